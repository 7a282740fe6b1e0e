"""Progress of the running training run: a bar, the model phase, examples/s and ETA.

One progress figure for the run, shown here and in the header alike: optimizer steps done
over the steps the run plans (the generator's, then the router's and the validator's), as
the last redraw saw them.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Label

from shammah_tui.formatting import eta_seconds, format_count, format_seconds, join_nonempty, plural
from shammah_tui.core.runs import RunReport, StepEvent
from shammah_tui.ui.widgets.run_bar import RunBar


class TrainingProgress(Vertical):
    """Idle line, or the current run's progress, model phase, throughput and ETA."""

    def __init__(self, *, clock: Callable[[], float], batch_size: int = 32, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self.batch_size = batch_size
        """Examples per step, to turn examples/s into an ETA."""
        self.run_id: int | None = None
        """The run shown, while one runs."""
        self.trigger = ""
        """What started the run shown (`manual`, `auto`, `tool` …)."""
        self._started = 0.0
        self._planned = 0
        self._phases: dict[str, int] = {}  # model → its step count, in the order the phases came
        self._last: StepEvent | None = None
        self._dirty = False
        self._shown: float | None = None

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
        """A run started; `total_steps` is the number of optimizer steps it plans."""
        self.run_id = run_id
        self.trigger = trigger
        self._started = self._clock()
        self._planned = max(0, total_steps)
        self._phases = {}
        self._last = None
        self._dirty = False
        self._shown = 0.0
        self.add_class("-running")
        self._show_fraction(0.0)
        self.query_one("#train-status", Label).update(f"Run #{run_id} ({trigger}) · evaluating…")

    def step(self, step: StepEvent) -> None:
        """Record the latest step; `redraw` (from the screen's timer) shows it."""
        if self.run_id is None:
            return
        self._phases[step.model] = step.total_steps
        self._last = step
        self._dirty = True

    def run_fraction(self) -> float | None:
        """Steps done over steps planned, from the latest step (None before the first step)."""
        step = self._last
        if step is None:
            return None
        done = sum(total for model, total in self._phases.items() if model != step.model) + step.step
        total = max(self._planned, sum(self._phases.values()))
        return min(1.0, done / total) if total > 0 else None

    def redraw(self) -> None:
        """Show the latest step, if a new one came since the last redraw.

        Steps can arrive hundreds of times a second; drawing each would cost a repaint per
        step, so the screen's timer calls this a few times a second (the header then reads
        `short_status`, which is the figure drawn here). The status line has a fixed height,
        so its update needs no relayout.
        """
        step = self._last
        if not self._dirty or step is None or self.run_id is None:
            return
        self._dirty = False
        fraction = self.run_fraction() or 0.0
        self._shown = fraction
        self._show_fraction(fraction)
        finishing = step.step >= step.total_steps and fraction >= 1.0
        eta = None if finishing else eta_seconds(step.step, step.total_steps, step.examples_per_s,
                                                 self.batch_size)
        self.query_one("#train-status", Label).update(layout=False, content=join_nonempty([
            f"Run #{self.run_id}",
            f"{step.model} {step.step}/{step.total_steps}",
            "calibrating and saving…" if finishing else f"{step.examples_per_s:,.1f} ex/s",
            f"phase ETA {format_seconds(eta)}" if eta is not None else "",
            f"{format_seconds(self._clock() - self._started)} elapsed",
        ]))

    def _show_fraction(self, fraction: float) -> None:
        self.query_one(RunBar).fraction = fraction
        self.query_one("#train-pct", Label).update(percent(fraction), layout=False)

    def end(self, report: RunReport) -> str:
        """The run ended; returns the one-line summary shown."""
        run_id, self.run_id = self.run_id, None
        self._last = None
        self._shown = None
        self.remove_class("-running")
        summary = summarize_report(run_id, report)
        self.query_one("#train-status", Label).update(summary)
        return summary

    def abandon(self) -> str:
        """The run went away without a report (its task ended without one); returns the line shown."""
        run_id, self.run_id = self.run_id, None
        self._last = None
        self._shown = None
        self.remove_class("-running")
        summary = f"Last run #{run_id} ended without a report; the models may be unchanged."
        self.query_one("#train-status", Label).update(summary)
        return summary

    @property
    def fraction(self) -> float | None:
        """The run's progress in [0, 1] as last drawn, while running."""
        return self._shown if self.run_id is not None else None

    def short_status(self) -> str:
        """For the header: `training #3 ·  45%`, the same figure as the bar."""
        if self.run_id is None:
            return ""
        return f"training #{self.run_id} · {percent(self._shown or 0.0)}"


def percent(fraction: float) -> str:
    """A fraction as a percentage four characters wide (`  7%`, `100%`): steady as it changes."""
    return f"{min(100, max(0, int(fraction * 100))):3d}%"


def summarize_report(run_id: int | None, report: RunReport, lead: str = "Last run") -> str:
    """One line about a finished run: what it did, as its report gives it."""
    label = f"{lead} #{run_id}" if run_id is not None else lead
    if report.status == "done":
        return join_nonempty([
            f"{label} done", f"{format_count(report.examples)} examples", plural(report.steps, "step"),
            format_seconds(report.duration_s) if report.duration_s else "",
            f"{report.examples_per_s:,.1f} ex/s" if report.examples_per_s else "",
        ])
    if report.status == "cancelled":
        return f"{label} cancelled; the models are unchanged."
    return f"{label} failed: {report.error or 'unknown error'}"
