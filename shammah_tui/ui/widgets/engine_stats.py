"""Queue size, estimated local error vs the bound δ, teacher tokens: from engine.stats()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from shammah_tui.formatting import format_count, format_pct, join_nonempty, plural, runs_phrase


class EngineStats(Vertical):
    """A few lines of numbers from `engine.stats()`."""

    def compose(self) -> ComposeResult:
        yield Label("— queued", id="stat-queue")
        yield Label("— trained", id="stat-store")
        yield Label("Local error —", id="stat-error")
        yield Label("Teacher tokens —", id="stat-tokens")

    def show(self, stats: Mapping[str, Any], batch_size: int | None = None, auto_train: bool | None = None) -> None:
        """Render a `stats()` dict (missing keys show as —).

        The queue reads as what it is: examples waiting, and the queue size at which a run
        starts by itself (`auto-train off` when none does).
        """
        queued = stats.get("examples_queued")
        starts = ("auto-train off" if auto_train is False
                  else f"a run starts at {format_count(batch_size)}" if batch_size else "")
        self.query_one("#stat-queue", Label).update(join_nonempty([f"{format_count(queued)} queued", starts]))
        self.query_one("#stat-store", Label).update(join_nonempty([
            f"{format_count(stats.get('examples_trained'))} trained",
            runs_phrase(stats),
            f"{format_count(stats.get('learned_answers'))} learned"]))
        error = stats.get("estimated_local_error")
        bound = stats.get("error_bound")
        checks = stats.get("spot_checks")
        over = error is not None and bound is not None and error > bound
        relation = ">" if over else ("≤" if error is not None else "vs")
        line = self.query_one("#stat-error", Label)
        line.update(join_nonempty([
            f"Local error {format_pct(error)} {relation} δ {format_pct(bound)}",
            plural(int(checks), "check") if checks is not None else "",
        ]))
        line.set_class(over, "-over")
        line.set_class(error is not None and not over, "-under")
        self.query_one("#stat-tokens", Label).update(
            f"Tokens {format_count(stats.get('teacher_tokens_used'))} used · "
            f"≈{format_count(stats.get('teacher_tokens_saved_estimate'))} saved")
