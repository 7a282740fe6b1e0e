"""The neural tier: the generator's answer, when the validator's p clears its calibrated threshold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shammah_tui.core.kinds import Tier
from shammah_tui.pipeline.agreement import agreement
from shammah_tui.pipeline.tiers.base import NEEDS_MODELS, Ask, Outcome

if TYPE_CHECKING:
    from shammah_tui.pipeline.local import DecisionState, LocalDecision


def exact_reference(ask: Ask) -> str | None:
    """An answer known to be right for this very query from a tier in the order: an exact rule's,
    or the teacher's own. A generated answer that contradicts one is never served."""
    if ask.template is not None:
        return ask.template.answer
    if ask.hit is not None and ask.hit.exact:
        return ask.hit.entry.answer
    return None


class NeuralTier:
    name: Tier = "neural"
    cost = 2  # a decode

    def answer(self, ask: Ask, state: DecisionState, decision: LocalDecision, *, quick: bool) -> Outcome:
        models, th = state.models, state.thresholds
        if not th.neural_calibrated:
            return False  # nothing learned yet, or calibration found no safe threshold
        if quick or models is None:
            return NEEDS_MODELS if quick else False
        if ask.use_router and th.router_trained:
            decision.router_p = models.router_p([ask.query], [decision.router_features])[0]
            if decision.router_p < th.router:
                decision.note = "router: forward"
                return False
        neural = models.answer(ask.query, ask.context, max_new_tokens=state.max_new_tokens, cancel=ask.cancel)
        if ask.cancel is not None and ask.cancel.is_set():
            decision.note = "cancelled"
            return False
        decision.neural_answer, decision.neural_confidence = neural.text, neural.confidence
        decision.neural_program = neural.program
        if not neural.text.strip():
            return False
        reference = exact_reference(ask)
        if reference is not None and not agreement(neural.text, reference).agrees:
            decision.note = "neural answer contradicts an exact answer"
            return False
        p = models.validator_p([ask.query], [neural.text], [[neural.confidence, 1.0, 0.0]])[0]
        decision.neural_p = p
        if not th.accepts(p, neural.confidence):
            return False
        if not th.region_open(ask.query):
            # The draft is still compared with the teacher's answer at the forward: evidence that
            # may open this region (exploration), never an answer served on pooled evidence.
            decision.note = "region closed: not enough evidence for this kind of question"
            return False
        decision.answer, decision.source = neural.text, "neural"
        decision.validator_p, decision.confidence = p, neural.confidence
        return True
