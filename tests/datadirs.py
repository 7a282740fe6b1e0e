"""Data-dir helpers shared by the process-level tests (reliability, concurrency)."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from shammah_tui.engine import Engine
from shammah_tui.settings import load_settings
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
