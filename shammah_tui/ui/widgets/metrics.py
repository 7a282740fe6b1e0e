"""The metrics pane: source rates, training progress, engine stats, charts, last run.

The screen feeds it through methods (attributes down). New data only marks
the charts and the progress line dirty; a 2 Hz timer redraws what changed,
the charts' figures being built in a worker thread (see ThreadedPlot), so a
burst of training steps costs one cheap repaint, not one per step.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from textual.app import ComposeResult
from textual.containers import Grid, Vertical, VerticalScroll
from textual.content import Content
from textual.events import Resize
from textual.timer import Timer
from textual.widgets import Label

from shammah_tui.core.stats import Stats
from shammah_tui.formatting import format_count, format_seconds, join_nonempty, plural
from shammah_tui.core.kinds import MODELS, SOURCES
from shammah_tui.core.records import LossPoint, SkillResult, TrainingRun
from shammah_tui.core.runs import RunReport, StepEvent
from shammah_tui.ui.widgets.engine_stats import EngineStats
from shammah_tui.ui.widgets.loss_chart import LossChart
from shammah_tui.ui.widgets.palette import MODEL_RGB, SOURCE_RGB
from shammah_tui.ui.widgets.rate_chart import SPAN, WINDOW, RateChart
from shammah_tui.ui.widgets.run_table import RunTable
from shammah_tui.ui.widgets.source_rates import SourceRates
from shammah_tui.ui.widgets.training_progress import TrainingProgress, summarize_report

#: Seconds between chart and progress redraws (2 Hz; only when their data changed).
REDRAW_INTERVAL = 0.5
#: Narrower than this, the cards stack in one column.
ONE_COLUMN_BELOW = 84


class MetricsPane(VerticalScroll, can_focus=True):
    """Everything measured, in one scrollable pane."""

    def __init__(self, *, clock: Callable[[], float], batch_size: int = 32, id: str | None = None) -> None:
        super().__init__(id=id)
        self._clock = clock
        self._batch_size = batch_size
        self.run_at = 32
        """The queue length at which a run starts by itself (the `batch_size` setting)."""
        self.session_counts: Counter[str] = Counter()
        """Answers per source in this session."""
        self.all_time_counts: Counter[str] = Counter()
        """Answers per source ever (from the store, plus this session)."""
        self._timer: Timer | None = None
        self.skill_history: dict[str, list[float]] = {}
        """Each skill's held-out accuracy after each run, oldest first."""

    def compose(self) -> ComposeResult:
        with Grid(id="metrics-grid"):
            with Vertical(classes="card", id="card-sources") as card:
                card.border_title = "Answer sources"
                yield SourceRates(id="source-rates")
            with Vertical(classes="card", id="card-training") as card:
                card.border_title = "Training"
                yield TrainingProgress(clock=self._clock, batch_size=self._batch_size, id="progress")
                yield EngineStats(id="engine-stats")
            with Vertical(classes="card -chart", id="card-rate-chart") as card:
                card.border_title = f"Source mix % · moving {WINDOW} · last {SPAN}"
                yield RateChart(id="rate-chart")
                yield Label(_legend([(s, SOURCE_RGB[s]) for s in SOURCES]), classes="legend")
            with Vertical(classes="card -chart", id="card-loss-chart") as card:
                card.border_title = "Loss per step"
                yield LossChart(id="loss-chart")
                yield Label(_legend([("generator ◂", MODEL_RGB["generator"]), ("router ▸", MODEL_RGB["router"]),
                                     ("validator ▸", MODEL_RGB["validator"])]), classes="legend")
            with Vertical(classes="card", id="card-run") as card:
                card.border_title = "Last run: loss before → after (same evaluation batch)"
                yield RunTable(id="run-table")

    def on_mount(self) -> None:
        self._show_counts()
        self._timer = self.set_interval(REDRAW_INTERVAL, self.redraw, name="metrics-redraw")

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < ONE_COLUMN_BELOW, "-one-column")

    # ------------------------------------------------------------------ inputs
    @property
    def progress(self) -> TrainingProgress:
        """The training progress widget."""
        return self.query_one(TrainingProgress)

    def restore(self, *, all_time: Mapping[str, int], recent: Sequence[str],
                losses: Mapping[str, Sequence[LossPoint]], last_run: TrainingRun | None,
                skills: Sequence[SkillResult] = ()) -> None:
        """What the store remembers from earlier sessions."""
        self.skill_history = {}
        for result in skills:
            self.skill_history.setdefault(result.skill, []).append(result.accuracy)
        self.all_time_counts = Counter({s: int(all_time.get(s, 0)) for s in SOURCES})
        self.query_one(RateChart).set_sources(recent)
        chart = self.query_one(LossChart)
        for model in MODELS:
            chart.set_history(model, [p.loss for p in losses.get(model, [])])
        if last_run is not None:
            self.show_run(last_run)
        self._show_counts()

    def record_answer(self, source: str | None) -> None:
        """One more answered query (errors have no source and are not counted)."""
        if source not in SOURCES:
            return
        self.session_counts[source] += 1
        self.all_time_counts[source] += 1
        self.query_one(RateChart).add(source)
        self._show_counts()

    def run_began(self, run_id: int, trigger: str, total_steps: int) -> None:
        """A training run started."""
        self.progress.begin(run_id, trigger, total_steps)

    def add_steps(self, steps: Iterable[StepEvent]) -> None:
        """Steps from the running run: loss points and progress."""
        chart = self.query_one(LossChart)
        steps = list(steps)
        by_model: dict[str, list[float]] = {}
        for step in steps:
            by_model.setdefault(step.model, []).append(step.loss)
        for model, losses in by_model.items():
            chart.extend(model, losses)
        for step in steps:  # each phase's size counts in the run's progress
            self.progress.step(step)

    def run_ended(self, run_id: int, report: RunReport) -> str:
        """A run ended: its losses go to the table; returns the one-line summary."""
        summary = self.progress.end(report)
        for result in report.skills:
            self.skill_history.setdefault(result.skill, []).append(result.accuracy)
        if report.status == "done" and report.losses:
            self.query_one(RunTable).show_run(_run_title(run_id, report.status, report.examples, report.steps,
                                                         report.duration_s), report.losses, self.skill_history)
        return summary

    def show_run(self, run: TrainingRun) -> None:
        """A stored run in the table (at start-up)."""
        duration = (run.finished_at - run.started_at) if run.finished_at is not None else 0.0
        self.query_one(RunTable).show_run(_run_title(run.id, run.status, run.examples, run.steps, duration),
                                          run.losses, self.skill_history)
        if run.status == "done":
            self.query_one("#train-status", Label).update(summarize_report(run.id, RunReport(
                status="done", steps=run.steps, examples=run.examples,
                examples_per_s=run.examples_per_s or 0.0, duration_s=max(0.0, duration))))

    def show_stats(self, stats: Stats, auto_train: bool | None = None) -> None:
        """Numbers from `engine.stats()` (`auto_train`: whether a full batch starts a run)."""
        self.query_one(EngineStats).show(stats, self.run_at, auto_train)

    # ---------------------------------------------------------------- drawing
    def redraw(self) -> None:
        """Rebuild the charts whose data changed (the timer calls this); not while hidden."""
        if not self.region.area:
            return  # not on screen (another tab on a narrow terminal): the charts stay dirty until shown
        # The progress line is drawn by the screen's flush, with the header, so both show one figure.
        self.query_one(RateChart).redraw()
        self.query_one(LossChart).redraw()

    def _show_counts(self) -> None:
        for rates in self.query(SourceRates):  # absent when the app quits before the pane is built
            rates.update_counts(self.session_counts, self.all_time_counts)


def _run_title(run_id: int, status: str, examples: int, steps: int, duration_s: float | None) -> str:
    return join_nonempty([f"Last run #{run_id} · {status}", f"{format_count(examples)} examples",
                          plural(steps, "step"), format_seconds(duration_s) if duration_s else ""])


def _legend(items: Sequence[tuple[str, tuple[int, int, int]]]) -> Content:
    """A one-line colour key: `━ name` per series, in its chart colour."""
    parts: list[tuple[str, str] | str] = []
    for i, (name, (r, g, b)) in enumerate(items):
        if i:
            parts.append(" ")
        parts.append((f"━{name}", f"#{r:02x}{g:02x}{b:02x}"))
    return Content.assemble(*parts)
