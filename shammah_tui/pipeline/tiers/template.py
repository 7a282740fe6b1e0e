"""The template tier: an exact rule's answer (arithmetic on the numbers given, units, greetings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shammah_tui.core.kinds import Tier
from shammah_tui.pipeline.tiers.base import Ask, Outcome

if TYPE_CHECKING:
    from shammah_tui.pipeline.local import DecisionState, LocalDecision


class TemplateTier:
    name: Tier = "template"
    cost = 0  # a parse

    def answer(self, ask: Ask, state: DecisionState, decision: LocalDecision, *, quick: bool) -> Outcome:
        if ask.template is None:
            return False
        decision.answer, decision.source = ask.template.answer, "template"
        return True
