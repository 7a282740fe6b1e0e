"""The generator on each skill's fixed held-out set: questions it never trained on.

What `analyze_model` reports, what the metrics pane charts run by run, and what the neural tier's
threshold is calibrated on: the generator's own answer, right when it agrees with the teacher's
(`agreement`), and the validator's p for it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from shammah_tui.curriculum.skills import SKILLS, SkillInstance
from shammah_tui.models.bundle import LocalModels
from shammah_tui.pipeline.agreement import agreement
from shammah_tui.pipeline.thresholds import Thresholds
from shammah_tui.core.records import CalibrationPoint, SkillResult, TrainingExample
from shammah_tui.training.trainer import Cancelled


@dataclass(frozen=True)
class HeldOutAnswer:
    """The generator's answer to one held-out instance."""

    item: SkillInstance
    answer: str
    confidence: float
    validator_p: float
    right: bool

    def point(self) -> CalibrationPoint:
        """As a calibration point (validator features: confidence, neural, similarity)."""
        return CalibrationPoint(self.item.query, self.answer, [self.confidence, 1.0, 0.0], self.right,
                                f"held_out:{self.item.skill}")


def held_out_items(skills: Sequence[str] | None = None, per_skill: int | None = None) -> list[SkillInstance]:
    """Every skill's held-out set (all skills by default); with ``per_skill``, the same first
    ``per_skill`` instances of each set every time (an answering model that decodes slowly is
    measured on fewer, so that a run does not spend minutes measuring itself)."""
    return [item for name in (skills or list(SKILLS)) for item in SKILLS[name].held_out()[:per_skill]]


def as_examples(items: Sequence[SkillInstance]) -> list[TrainingExample]:
    """Held-out instances in the shape the trainer measures a loss on (never trained on)."""
    return [TrainingExample(-(i + 1), item.query, "", "", item.answer, "held_out", "held_out")
            for i, item in enumerate(items)]


def answer_held_out(models: LocalModels, items: Sequence[SkillInstance], max_new_tokens: int,
                    cancel: threading.Event | None = None) -> list[HeldOutAnswer]:
    """The generator's greedy answer to each instance, judged against the teacher's."""
    drafts = []
    for item in items:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        drafts.append(models.answer(item.query, max_new_tokens=max_new_tokens))
    ps = models.validator_p([i.query for i in items], [d.text for d in drafts],
                            [[d.confidence, 1.0, 0.0] for d in drafts]) if items else []
    return [HeldOutAnswer(item, d.text, d.confidence, p, bool(d.text.strip()) and agreement(d.text, item.answer).agrees)
            for item, d, p in zip(items, drafts, ps)]


def skill_results(answers: Sequence[HeldOutAnswer], thresholds: Thresholds,
                  losses: dict[str, float] | None = None) -> list[SkillResult]:
    """Per skill: held-out accuracy, and the share the neural tier would serve at the threshold."""
    out = []
    for name in SKILLS:
        mine = [a for a in answers if a.item.skill == name]
        if not mine:
            continue
        served = sum(thresholds.serves(a.item.query, a.validator_p, a.confidence) for a in mine)
        out.append(SkillResult(name, sum(a.right for a in mine) / len(mine), served / len(mine), len(mine),
                               (losses or {}).get(name)))
    return out
