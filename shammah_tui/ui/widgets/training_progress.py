"""Progress of the running training run: a bar, examples/s and ETA per model phase."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label

from shammah_tui.formatting import (
    eta_seconds,
    format_pct,
    format_seconds,
    join_nonempty,
)
from shammah_tui.training.events import RunReport, StepEvent
from shammah_tui.ui.widgets.run_bar import RunBar


class TrainingProgress(Vertical):
    """Idle line, or the current run's model phase, step, throughput and ETA."""

    def __init__(self, *, clock: Callable[[], float], batch_size: int = 32, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self.batch_size = batch_size
        """Examples per step, to turn examples/s into an ETA."""
        self.run_id: int | None = None
        """The run shown, while one runs."""
        self._started = 0.0
        self._last: StepEvent | None = None
        self._dirty = False

    def compose(self) -> ComposeResult:
        yield Label("Training: idle", id="train-status")
        with Horizontal(id="train-bar"):
            yield RunBar()
            yield Label("  0%", id="train-pct")

    @property
    def running(self) -> bool:
        """True while a run is shown."""
        return self.run_id is not None

    def begin(self, run_id: int, trigger: str, total_steps: int) -> None:
        """A run started."""
        self.run_id = run_id
        self._started = self._clock()
        self._last = None
        self._dirty = False
        self.add_class("-running")
        self._show_fraction(0.0)
        self.query_one("#train-status", Label).update(
            f"Run #{run_id} ({trigger}) · evaluating…")

    def step(self, step: StepEvent) -> None:
        """Record the latest step; `redraw` (from the metrics timer) shows it."""
        if self.run_id is None:
            return
        self._last = step
        self._dirty = True

    def redraw(self) -> None:
        """Show the latest step, if a new one came since the last redraw.

        Steps can arrive hundreds of times a second; drawing each would cost a
        repaint per step, so the metrics timer calls this a few times a second.
        The status line has a fixed height, so its update needs no relayout.
        """
        step = self._last
        if not self._dirty or step is None or self.run_id is None:
            return
        self._dirty = False
        self._show_fraction(step.step / step.total_steps if step.total_steps > 0 else 0.0)
        eta = eta_seconds(step.step, step.total_steps, step.examples_per_s, self.batch_size)
        self.query_one("#train-status", Label).update(layout=False, content=join_nonempty([
            f"Run #{self.run_id}",
            f"{step.model} {step.step}/{step.total_steps}",
            f"{step.examples_per_s:,.1f} ex/s",
            f"ETA {format_seconds(eta)}" if eta is not None else "",
            f"{format_seconds(self._clock() - self._started)} elapsed",
        ]))

    def _show_fraction(self, fraction: float) -> None:
        self.query_one(RunBar).fraction = fraction
        self.query_one("#train-pct", Label).update(f"{fraction * 100:3.0f}%", layout=False)

    def end(self, report: RunReport) -> str:
        """The run ended; returns the one-line summary shown."""
        run_id, self.run_id = self.run_id, None
        self.remove_class("-running")
        summary = summarize_report(run_id, report)
        self.query_one("#train-status", Label).update(summary)
        return summary

    @property
    def fraction(self) -> float | None:
        """Progress of the current phase in [0, 1], while running."""
        if self._last is None or self._last.total_steps <= 0:
            return None
        return self._last.step / self._last.total_steps

    def short_status(self) -> str:
        """For the header: `training #3 · 45%` (of the current model's phase)."""
        if self.run_id is None:
            return ""
        if self._last is None:
            return f"training #{self.run_id}"
        return f"training #{self.run_id} · {format_pct(self.fraction, 0)}"


def summarize_report(run_id: int | None, report: RunReport) -> str:
    """One line about a finished run."""
    label = f"run #{run_id}" if run_id is not None else "run"
    if report.status == "done":
        return join_nonempty([
            f"Last {label} done", f"{report.examples:,} ex", f"{report.steps} steps",
            f"{report.examples_per_s:,.1f} ex/s" if report.examples_per_s else "",
            format_seconds(report.duration_s) if report.duration_s else "",
        ])
    if report.status == "cancelled":
        return f"Last {label} cancelled; the models are unchanged."
    return f"Last {label} failed: {report.error or 'unknown error'}"
