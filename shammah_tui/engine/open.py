"""Opening an engine for a front end (the CLI, the UI, `bench`, the probes): one way, one error.

`EngineOpenError` is every reason an engine cannot be opened, in one line, and whether the
settings or the data dir as given are at fault (exit code 2) or something failed at run time
(exit code 1). Importing this module is cheap (the settings only): the CLI reads its settings
through it before anything is on screen; the engine itself is imported when one is opened.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shammah_tui.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from shammah_tui.engine.front import Engine
    from shammah_tui.teachers.base import Teacher

EXIT_FAILURE, EXIT_USAGE = 1, 2


class EngineOpenError(Exception):
    """The engine cannot be opened. `message` says why in one line; `usage` is True when the
    settings or the data dir as given are wrong (exit 2), False when opening failed (exit 1)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        line = " ".join(message.split()) or "the engine could not be opened"
        super().__init__(line)
        self.message = line
        self.usage = usage

    @property
    def exit_code(self) -> int:
        return EXIT_USAGE if self.usage else EXIT_FAILURE


def engine_settings(data_dir: Path, overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings for `data_dir`: defaults ← settings.toml ← environment ← `overrides` (flags).
    A bad value, or a data dir that is not a directory, raises EngineOpenError (usage)."""
    try:
        if data_dir.exists() and not data_dir.is_dir():
            raise SettingsError(f"data dir {data_dir} is not a directory")
        return load_settings(data_dir, overrides)
    except SettingsError as exc:
        raise EngineOpenError(str(exc), usage=True) from None


async def open_engine(data_dir: Path, settings: Settings | None = None, teacher: Teacher | None = None, *,
                      overrides: Mapping[str, Any] | None = None, seed: int | None = None,
                      use_models: bool = True, clock: Callable[[], float] = time.time) -> Engine:
    """Open the engine on `data_dir` (see `Engine.open`); every failure is an EngineOpenError.

    With no `settings` they are read from the data dir (with `overrides`); with no `teacher`, the
    one the settings ask for is made. The teacher is the engine's from here on: closed with it,
    or here when the engine cannot open.
    """
    from shammah_tui.engine.front import Engine
    from shammah_tui.store import StoreError

    if settings is None:
        settings = engine_settings(data_dir, overrides)
    if teacher is None:
        from shammah_tui.teachers.factory import make_teacher

        teacher = make_teacher(settings)
    try:
        return await Engine.open(data_dir, settings, teacher, clock=clock, seed=seed, use_models=use_models)
    except BaseException as exc:
        await teacher.close()
        if isinstance(exc, StoreError):
            raise EngineOpenError(str(exc)) from None
        if isinstance(exc, OSError):
            raise EngineOpenError(f"cannot use data dir {data_dir}: {exc.strerror or exc}") from None
        raise
