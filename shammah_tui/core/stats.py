"""What `Engine.stats()` measures, typed: the `stats --json` object (`to_json`), the metrics pane and
`/stats` read the same fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shammah_tui.core.kinds import SOURCES


@dataclass(frozen=True)
class LossChange:
    """A model's loss before → after the last run, on the same held-out batch."""

    old_loss: float
    new_loss: float
    improvement_pct: float
    measured_on: str


@dataclass(frozen=True)
class SkillStats:
    """A skill's held-out set after the last run that measured it."""

    held_out_accuracy: float
    served_share: float
    held_out_size: int
    held_out_loss: float | None


@dataclass(frozen=True)
class TierBound:
    """A tier's promise beside how it is kept: the bound δ, the estimated error at the threshold in
    force, and the error spot checks measured on what it served."""

    spot_checks: int = 0
    served_error: float | None = None
    bound: float | None = None
    """None for a tier with no threshold (exact rules)."""
    estimated_error: float | None = None
    threshold: float | None = None
    open_regions: int | None = None
    """Regions whose own evidence opened them (the neural tier)."""
    regions: int | None = None


def _zero_by_source() -> dict[str, int]:
    return dict.fromkeys(SOURCES, 0)


@dataclass(frozen=True)
class Stats:
    """Everything measured so far, read from the store."""

    queries: int = 0
    by_source: dict[str, int] = field(default_factory=_zero_by_source)
    only_by_source: dict[str, int] = field(default_factory=_zero_by_source)
    """Answers no cheaper tier would have given, per source."""
    local_share: float = 0.0
    examples_queued: int = 0
    examples_exam: int = 0
    """Forwarded questions held out of training, asked after every run (training/exam.py)."""
    examples_trained: int = 0
    learned_answers: int = 0
    training_runs: int = 0
    """Runs that finished; `runs_started` counts cancelled and failed ones too (each takes an id)."""
    runs_started: int = 0
    last_run_id: int | None = None
    last_run: dict[str, LossChange] | None = None
    verified_agreement: float | None = None
    spot_checks: int = 0
    estimated_local_error: float | None = None
    error_bound: float = 0.02
    validator_threshold: float = 1.01
    neural_score: str = "validator"
    neural_estimated_error: float | None = None
    encoder: str = ""
    skills: dict[str, SkillStats] = field(default_factory=dict)
    bounds: dict[str, TierBound] = field(default_factory=dict)
    acceptance_threshold: float = 1.01
    learned_estimated_error: float | None = None
    teacher_tokens_used: int = 0
    teacher_tokens_saved_estimate: int = 0
    saved: dict[str, Any] = field(default_factory=dict)
    """What served local answers saved, measured from the upstream usage of each reused answer:
    `total`, per UTC day and source, and the date of the price table (`serve` traffic)."""

    def to_json(self) -> dict[str, Any]:
        """The `stats --json` object (DESIGN §6)."""
        return asdict(self)
