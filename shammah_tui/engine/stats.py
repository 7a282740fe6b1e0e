"""`Engine.stats()`: rates, queue and store sizes, the last run's losses, calibration and bounds."""

from __future__ import annotations

from typing import Any

from shammah_tui.core.records import SkillResult
from shammah_tui.core.stats import LossChange, SkillStats, Stats, TierBound
from shammah_tui.pipeline.thresholds import Thresholds
from shammah_tui.settings import Settings
from shammah_tui.store import Store
from shammah_tui.training.exam import queue_counts


async def collect_stats(store: Store, settings: Settings, thresholds: Thresholds, encoder: str) -> Stats:
    """Everything measured so far, read from the store (docs/ARCHITECTURE.md; the README lists the keys)."""
    by_source = await store.source_counts()
    latest: dict[str, SkillResult] = {}
    for result in await store.skill_history(limit=60):  # oldest first: the last one of each skill wins
        latest[result.skill] = result
    credited = await store.credited_counts()
    examples = await queue_counts(store)
    checks = await store.spot_check_counts_by_source()
    checked, agreed = sum(n for n, _ in checks.values()), sum(a for _, a in checks.values())
    last = await store.last_finished_run()
    tokens_in, tokens_out, forwards = await store.teacher_token_totals()
    answered = sum(by_source.values())
    local = answered - by_source["forward"]
    per_forward = (tokens_in + tokens_out) / forwards if forwards else 0.0
    return Stats(
        queries=answered,
        by_source=by_source,
        only_by_source=credited,
        local_share=round(local / answered, 4) if answered else 0.0,
        examples_queued=examples["queued"],
        examples_exam=examples["exam"],
        examples_trained=examples["trained"],
        learned_answers=await store.learned_count(),
        training_runs=await store.run_count(),
        runs_started=await store.runs_started(),
        last_run_id=None if last is None else last.id,
        last_run=None if last is None else {
            model: LossChange(round(loss.old_loss, 5), round(loss.new_loss, 5), round(loss.improvement_pct, 2),
                              loss.measured_on)
            for model, loss in last.losses.items()
        },
        verified_agreement=round(agreed / checked, 4) if checked else None,
        spot_checks=checked,
        estimated_local_error=round((checked - agreed) / checked, 4) if checked else None,
        error_bound=settings.error_bound,
        validator_threshold=round(thresholds.validator, 4),
        neural_score=thresholds.neural_score,
        neural_estimated_error=_rounded(thresholds.estimated_error),
        encoder=encoder,
        skills={name: SkillStats(round(r.accuracy, 4), round(r.served, 4), r.held_out, _rounded(r.loss))
                for name, r in latest.items()},
        bounds=tier_bounds(settings, thresholds, checks),
        acceptance_threshold=round(thresholds.acceptance, 4),
        learned_estimated_error=_rounded(thresholds.acceptance_error),
        teacher_tokens_used=tokens_in + tokens_out,
        teacher_tokens_saved_estimate=round(per_forward * local),
        saved=await saved_by_source(store, settings),
    )


async def saved_by_source(store: Store, settings: Settings) -> dict[str, Any]:
    """What served local answers saved, per UTC day and source: the upstream usage measured for
    each stored answer reused, priced with the dated table in settings. `serve` traffic only:
    there the upstream's usage of each answer is known."""
    days: dict[str, dict[str, dict[str, Any]]] = {}
    total = {"requests": 0, "input_tokens": 0, "output_tokens": 0, "usd": 0.0}
    for day, source, requests, saved_in, saved_out, usd in await store.savings_by_day():
        days.setdefault(day, {})[source] = {"requests": requests, "input_tokens": saved_in,
                                            "output_tokens": saved_out, "usd": round(usd, 6)}
        if source != "forward":
            total["requests"] += requests
            total["input_tokens"] += saved_in
            total["output_tokens"] += saved_out
            total["usd"] += usd
    total["usd"] = round(float(total["usd"]), 6)
    return {"total": total, "by_day": days, "prices_date": settings.prices_date}


def tier_bounds(settings: Settings, thresholds: Thresholds,
                checks: dict[str, tuple[int, int]]) -> dict[str, TierBound]:
    """Per local tier, the promise and how it is kept, side by side: the bound δ, the error the
    calibration estimates at the threshold in force, and the error spot checks measured on what it
    served (with how many checks that is)."""
    def checked(source: str) -> tuple[int, float | None]:
        n, agreed = checks.get(source, (0, 0))
        return n, round((n - agreed) / n, 4) if n else None

    (neural_n, neural_err), (learned_n, learned_err), (template_n, template_err) = map(
        checked, ("neural", "learned", "template"))
    return {
        "neural": TierBound(neural_n, neural_err, settings.error_bound, _rounded(thresholds.estimated_error),
                            round(thresholds.validator, 4), len(thresholds.open_regions),
                            len(thresholds.neural_regions)),
        "learned": TierBound(learned_n, learned_err, settings.error_bound, _rounded(thresholds.acceptance_error),
                             round(thresholds.acceptance, 4)),
        # Exact rules have no threshold to calibrate: only what spot checks measured.
        "template": TierBound(template_n, template_err),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
