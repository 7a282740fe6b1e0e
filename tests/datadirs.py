"""Data-dir helpers shared by the engine and process-level tests."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from shammah_tui.engine import Engine
from shammah_tui.paths import MODELS_DIR
from shammah_tui.settings import Settings, load_settings
from shammah_tui.teachers.offline import OfflineTeacher


async def open_engine(data: Path) -> Engine:
    """Open the data dir as the app does, with its own settings.toml."""
    settings = load_settings(data)
    return await Engine.open(data, settings, OfflineTeacher(seed=settings.seed))


def model_warnings(data: Path) -> list[str]:
    """Load the models as the app does; the warnings it gives."""
    async def load() -> list[str]:
        engine = await open_engine(data)
        try:
            return list(await engine.load_models())
        finally:
            await engine.close()

    return asyncio.run(load())


def make_template(data: Path, settings_toml: str) -> Path:
    """A data dir with settings, its tokenizer and all three checkpoints written."""
    data.mkdir(mode=0o700)
    (data / "settings.toml").write_text(settings_toml)

    async def build() -> None:
        engine = await open_engine(data)
        try:
            assert await engine.load_models() == []
            engine.models.save(data / "models")
        finally:
            await engine.close()

    asyncio.run(build())
    return data


def integrity(db: Path) -> str:
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def build_models_dir(base: Path) -> Path:
    """A models dir holding only a tokenizer, built once per session by a real engine.

    Building the tokenizer costs seconds; every engine in the tests starts from the same one and
    fresh (seeded) weights, exactly as a first start would.
    """
    shared = base / "shared-models"
    if shared.exists():
        return shared

    async def build(data_dir: Path) -> None:
        engine = await Engine.open(data_dir, Settings(teacher="offline"), OfflineTeacher())
        try:
            await engine.load_models()
        finally:
            await engine.close()

    scratch = base / "shared-models-build"
    shutil.rmtree(scratch, ignore_errors=True)
    asyncio.run(build(scratch))
    shutil.copytree(scratch / MODELS_DIR, shared)
    return shared


def seed_data_dir(data_dir: Path, models_seed: Path) -> Path:
    """`data_dir` with the session's tokenizer in place (see `models_seed` in conftest.py)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(models_seed, data_dir / MODELS_DIR)
    return data_dir
