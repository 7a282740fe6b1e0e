"""The `stats --json` object: rates, queue and store sizes, the last run's losses, calibration."""

from __future__ import annotations

from typing import Any

from shammah_tui.pipeline.local import Thresholds
from shammah_tui.settings import Settings
from shammah_tui.store import Store


async def collect_stats(store: Store, settings: Settings, thresholds: Thresholds) -> dict[str, Any]:
    """Everything measured so far, read from the store (DESIGN §6 names the keys)."""
    by_source = await store.source_counts()
    examples = await store.example_counts()
    checked, agreed = await store.spot_check_counts()
    last = await store.last_finished_run()
    tokens_in, tokens_out, forwards = await store.teacher_token_totals()
    answered = sum(by_source.values())
    local = answered - by_source["forward"]
    per_forward = (tokens_in + tokens_out) / forwards if forwards else 0.0
    return {
        "queries": answered,
        "by_source": by_source,
        "local_share": round(local / answered, 4) if answered else 0.0,
        "examples_queued": examples["queued"],
        "examples_trained": examples["trained"],
        "learned_answers": await store.learned_count(),
        "training_runs": await store.run_count(),
        "last_run": None if last is None else {
            model: {"old_loss": round(loss.old_loss, 5), "new_loss": round(loss.new_loss, 5),
                    "improvement_pct": round(loss.improvement_pct, 2)}
            for model, loss in last.losses.items()
        },
        "verified_agreement": round(agreed / checked, 4) if checked else None,
        "spot_checks": checked,
        "estimated_local_error": round((checked - agreed) / checked, 4) if checked else None,
        "error_bound": settings.error_bound,
        "validator_threshold": round(thresholds.validator, 4),
        "teacher_tokens_used": tokens_in + tokens_out,
        "teacher_tokens_saved_estimate": round(per_forward * local),
    }

