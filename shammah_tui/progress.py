"""Progress bars with an ETA for the CLI's long work (`teach`, `train`, `bench`), drawn by
rich.progress on stderr, and only when stderr is a terminal: piped or redirected, nothing is drawn
and stdout carries only what the command prints.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)


class WorkProgress:
    """Bars for one command's work; every method is a no-op when nothing is drawn.

    `console` defaults to stderr; a test passes its own (a file, `force_terminal=True` for a
    terminal). Safe to call from the training thread: rich's Progress locks its own state.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal
        self._progress: Progress | None = None
        self._run_tasks: dict[int, tuple[str, TaskID]] = {}
        if self.enabled:
            # Lines printed to stdout while a bar is up go above it, but only when stdout is the same
            # screen: a redirected stdout keeps its own lines.
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=True,
                redirect_stdout=sys.stdout.isatty(), redirect_stderr=True,
            )

    def __enter__(self) -> WorkProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, description: str, total: float | None) -> TaskID | None:
        """A new bar (None when nothing is drawn)."""
        return None if self._progress is None else self._progress.add_task(description, total=total)

    def update(self, task: TaskID | None, **fields: Any) -> None:
        if self._progress is not None and task is not None:
            self._progress.update(task, **fields)

    def advance(self, task: TaskID | None, by: float = 1) -> None:
        if self._progress is not None and task is not None:
            self._progress.advance(task, by)

    def remove(self, task: TaskID | None) -> None:
        if self._progress is not None and task is not None:
            self._progress.remove_task(task)

    def on_event(self, event: object) -> None:
        """Engine events: a bar per model phase of a training run, with that phase's ETA."""
        from shammah_tui.core.events import TrainingFinished, TrainingStep

        if self._progress is None:
            return
        if isinstance(event, TrainingStep):
            step = event.step
            model, task = self._run_tasks.get(event.run_id, (None, None))
            if model != step.model:
                self.remove(task)
                task = self.add(f"run #{event.run_id} {step.model}", step.total_steps)
                assert task is not None
                self._run_tasks[event.run_id] = (step.model, task)
            self.update(task, completed=step.step, total=step.total_steps)
        elif isinstance(event, TrainingFinished):
            _, task = self._run_tasks.pop(event.run_id, (None, None))
            self.remove(task)
