"""The Textual UI. The only package that imports textual.

`run_tui` is what the CLI calls. Nothing here imports torch, the engine or a
teacher at import time: the first frame comes before any of them load.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shammah_tui.settings import Settings
    from shammah_tui.teachers.base import Teacher
    from shammah_tui.ui.app import ShammahApp

__all__ = ["run_tui", "build_app"]


def build_app(data_dir: Path, settings: Settings, teacher: Teacher | None = None, *,
              seed: int | None = None, load_models: bool = True, serve_port: int | None = None,
              resume_last: bool = False) -> ShammahApp:
    """The app for `data_dir`; it opens the engine inside its own event loop once running.

    With no `teacher`, the one `settings` asks for is made there too (so an
    AsyncAnthropic client is created on the loop that will use it). `resume_last`
    (`--continue`) asks for the last conversation to be reopened.
    """
    from shammah_tui.ui.app import ShammahApp

    def load():  # off the UI loop: importing the engine and the anthropic SDK takes seconds
        from shammah_tui.engine import Engine  # noqa: F401  (imported here rather than on the UI loop)
        from shammah_tui.engine.open import open_engine as opener

        chosen = teacher
        if chosen is None:
            from shammah_tui.teachers.factory import make_teacher

            chosen = make_teacher(settings)  # Claude's client is made lazily, on the UI loop
        return opener, chosen

    async def open_engine():
        opener, chosen = await asyncio.to_thread(load)
        return await opener(data_dir, settings, chosen, seed=seed)

    return ShammahApp(open_engine=open_engine, load_models=load_models, data_dir=data_dir,
                      theme=settings.theme, serve_port=serve_port, resume_last=resume_last)


def run_tui(data_dir: Path, settings: Settings, teacher: Teacher | None = None, *,
            seed: int | None = None, serve_port: int | None = None, resume_last: bool = False) -> int:
    """Run the TUI until the user quits; returns the exit code (0 ok, 1 runtime failure).

    The engine is opened inside the app's event loop (aiosqlite binds to it),
    the models load in the background after the first frame, and the engine is
    closed (training cancelled, teacher and store closed) before this returns.
    When the data directory cannot be opened, the app exits with code 1 and
    prints one line saying why (`shammah-tui: ...`).
    """
    app = build_app(data_dir, settings, teacher, seed=seed, serve_port=serve_port, resume_last=resume_last)
    app.run()
    if app.exit_reason:
        print(f"shammah-tui: {app.exit_reason}", file=sys.stderr)
    return int(app.return_code or 0)
