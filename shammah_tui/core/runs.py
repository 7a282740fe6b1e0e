"""What a training run reports while it runs and when it ends."""

from __future__ import annotations

from dataclasses import dataclass, field

from shammah_tui.core.kinds import RunStatus
from shammah_tui.core.records import ModelLoss, SkillResult


@dataclass(frozen=True)
class StepEvent:
    """One optimizer step of one model."""

    model: str
    step: int
    total_steps: int
    loss: float
    examples_per_s: float


@dataclass
class RunReport:
    """The outcome of one training run."""

    status: RunStatus
    losses: dict[str, ModelLoss] = field(default_factory=dict)
    steps: int = 0
    examples: int = 0
    examples_per_s: float = 0.0
    duration_s: float = 0.0
    trained_ids: list[int] = field(default_factory=list)
    error: str | None = None
    skills: list[SkillResult] = field(default_factory=list)
    """The generator on each skill's held-out set after the run."""


def improvement_pct(old: float, new: float) -> float:
    """How much lower the new loss is, in percent of the old one (negative if it rose)."""
    if old <= 0:
        return 0.0
    return (old - new) / old * 100.0
