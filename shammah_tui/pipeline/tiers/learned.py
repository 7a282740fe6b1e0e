"""The learned tier: the teacher's own answer to this question, else to one that means the same."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shammah_tui.core.kinds import Tier
from shammah_tui.pipeline.tiers.base import NEEDS_MODELS, Ask, Outcome

if TYPE_CHECKING:
    from shammah_tui.pipeline.local import DecisionState, LocalDecision


class LearnedTier:
    name: Tier = "learned"
    cost = 1  # a dict lookup, or an embedding and a search

    def answer(self, ask: Ask, state: DecisionState, decision: LocalDecision, *, quick: bool) -> Outcome:
        hit = ask.hit
        if hit is not None and hit.exact:
            decision.answer, decision.source = hit.entry.answer, "learned"
            decision.learned_id, decision.confidence = hit.entry.id, 1.0
            return True
        if quick:
            return NEEDS_MODELS  # a paraphrase needs the encoder
        semantic = state.semantic
        if semantic is not None and semantic.ready:
            if decision.embedding is None:
                decision.embedding = semantic.embed([ask.query])[0]
            candidate = semantic.best(ask.query, decision.embedding, ask.context_key, exclude_id=ask.own_id)
            decision.semantic = candidate
            if candidate is not None and candidate.p >= state.thresholds.acceptance:
                decision.answer, decision.source = candidate.entry.answer, "learned"
                decision.learned_id, decision.confidence = candidate.entry.id, candidate.p
                return True
            return False
        # No encoder: the precision-first lexical similarity decides alone.
        if hit is not None and state.index.confident(hit):
            decision.answer, decision.source = hit.entry.answer, "learned"
            decision.learned_id, decision.confidence = hit.entry.id, hit.similarity
            return True
        return False
