"""Queue size, estimated local error vs the bound δ, each tier's bound beside the error spot checks
measured, teacher tokens: from engine.stats()."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label

from shammah_tui.core.stats import Stats, TierBound
from shammah_tui.formatting import format_count, format_pct, join_nonempty, runs_phrase


class EngineStats(Vertical):
    """A few lines of numbers from `engine.stats()`."""

    def compose(self) -> ComposeResult:
        yield Label("— queued", id="stat-queue")
        yield Label("— trained", id="stat-store")
        yield Label("Neural —", id="stat-neural", classes="bound")
        yield Label("Learned —", id="stat-learned", classes="bound")
        yield Label("Teacher tokens —", id="stat-tokens")

    def show(self, stats: Stats, batch_size: int | None = None, auto_train: bool | None = None) -> None:
        """Render what `stats()` measured (unknowns show as —).

        The queue reads as what it is: examples waiting, and the queue size at which a run
        starts by itself (`auto-train off` when none does).
        """
        starts = ("auto-train off" if auto_train is False
                  else f"a run starts at {format_count(batch_size)}" if batch_size else "")
        self.query_one("#stat-queue", Label).update(
            join_nonempty([f"{format_count(stats.examples_queued)} queued", starts]))
        self.query_one("#stat-store", Label).update(join_nonempty([
            f"{format_count(stats.examples_trained)} trained", runs_phrase(stats),
            f"{format_count(stats.learned_answers)} learned"]))
        for tier, title in (("neural", "Neural"), ("learned", "Learned")):
            bound = stats.bounds.get(tier)
            line = self.query_one(f"#stat-{tier}", Label)
            line.update(tier_bound_line(title, bound))
            over = bound is not None and bound.bound is not None and any(
                error is not None and error > bound.bound for error in (bound.estimated_error, bound.served_error))
            line.set_class(over, "-over")
            line.set_class(bound is not None and bound.spot_checks > 0 and not over, "-under")
        self.query_one("#stat-tokens", Label).update(
            f"Tokens {format_count(stats.teacher_tokens_used)} used · "
            f"≈{format_count(stats.teacher_tokens_saved_estimate)} saved")


def tier_bound_line(title: str, bound: TierBound | None) -> str:
    """"Neural ≈1.2% ≤ δ 5.0% · 0/20 ✗": a tier's error estimated at the threshold in force, against
    the bound δ, beside what spot checks found wrong among the answers it served."""
    if bound is None or bound.bound is None:
        return f"{title} —"
    estimate = bound.estimated_error
    relation = "vs" if estimate is None else (">" if estimate > bound.bound else "≤")
    wrong = round((bound.served_error or 0.0) * bound.spot_checks)
    return join_nonempty([f"{title} ≈{format_pct(estimate)} {relation} δ {format_pct(bound.bound)}",
                          f"{wrong}/{format_count(bound.spot_checks)} ✗"])
