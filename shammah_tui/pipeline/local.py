"""The local side of one query: the tiers in order, over one frozen decision state.

Synchronous and thread-safe (the engine runs it in a worker thread). It never asks the teacher;
the engine forwards when `LocalDecision.answer` is None.

Everything a decision reads — the models, the learned index and semantic store, the thresholds,
the tier order — is one frozen `DecisionState`. A decision takes it once, at its start; training
and calibration publish a new one in one assignment (`LocalAnswerer.publish`), so a decision sees
the whole old state or the whole new one, never half of a new calibration.

A tier is credited only with what no cheaper tier would have given: with the default order
(template, learned, neural) the first answer is the cheapest, and with another order the cheaper
tiers the order put later are asked too, so `LocalDecision.credited` says whether the answering
tier was the only one that could give it. A tier that is not in the order takes no part.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from shammah_tui.core.kinds import Source, Tier
from shammah_tui.pipeline.learned import LearnedHit, LearnedIndex
from shammah_tui.pipeline.semantic import SemanticCandidate, SemanticStore
from shammah_tui.pipeline.templates import TemplateAnswer, template_answer
from shammah_tui.pipeline.thresholds import Thresholds
from shammah_tui.pipeline.tiers import NEEDS_MODELS, TIER_PLUGINS, Ask, TierPlugin

if TYPE_CHECKING:  # torch loads in the background; importing it here would delay the first frame
    from shammah_tui.models.bundle import LocalModels

#: Router features, in [0, 1]: exact learned hit, best learned similarity,
#: a template rule matches, query length (tokens / 64, capped).
ROUTER_FEATURE_NAMES = ("exact_hit", "similarity", "template", "length")
#: Validator features, in [0, 1]: generator confidence, candidate is neural, learned similarity.
VALIDATOR_FEATURE_NAMES = ("confidence", "neural", "similarity")


@dataclass(frozen=True)
class DecisionState:
    """Everything one decision reads, published whole."""

    models: LocalModels | None
    index: LearnedIndex
    thresholds: Thresholds
    tier_order: tuple[Tier, ...]
    max_new_tokens: int = 64
    semantic: SemanticStore | None = None

    @property
    def tiers(self) -> tuple[TierPlugin, ...]:
        return tuple(TIER_PLUGINS[name] for name in self.tier_order)

    def ask(self, query: str, norm: str, context: str, context_key: str, *, exclude_self: bool = False,
            use_router: bool = True, cancel: threading.Event | None = None) -> Ask:
        """What the tiers in the order look at; nothing is computed for a tier that is off."""
        learned_on = "learned" in self.tier_order
        hit = self.index.lookup(norm, context_key, exclude_self=exclude_self) if learned_on else None
        # Self-evaluation asks "what if this question were new?": its own stored answer is out.
        own = self.index.lookup(norm, context_key) if exclude_self and learned_on else None
        template = template_answer(query) if "template" in self.tier_order else None
        return Ask(query, norm, context, context_key, hit, template,
                   own.entry.id if own is not None and own.exact else None, use_router, cancel)


@dataclass
class LocalDecision:
    """What the local side decided for one query."""

    answer: str | None = None
    source: Source | None = None
    router_p: float | None = None
    validator_p: float | None = None
    confidence: float | None = None
    router_features: list[float] = field(default_factory=list)
    tried: list[Tier] = field(default_factory=list)
    neural_answer: str | None = None
    """The generator's draft, served or not (a forward compares it with the teacher's answer)."""
    neural_confidence: float | None = None
    neural_program: str | None = None
    """The program the draft was computed by, when the model wrote one."""
    neural_p: float | None = None
    """The validator's p for the draft."""
    learned_id: int | None = None
    """The stored answer served by the learned tier (its hit is counted)."""
    latency_ms: float = 0.0
    note: str = ""
    credited: bool = True
    """False when a cheaper tier that the order put later would have answered too."""
    semantic: SemanticCandidate | None = None
    """The best stored question by meaning, served or not (a forward labels it for free)."""
    embedding: np.ndarray | None = field(default=None, repr=False)
    """The query's embedding, when the semantic store computed one (kept with a learned answer)."""
    thresholds: Thresholds | None = field(default=None, repr=False)
    """The thresholds this decision was made under (those of the state it started with)."""


def router_features(models: LocalModels | None, query: str, hit: LearnedHit | None,
                    template: TemplateAnswer | None) -> list[float]:
    """The side features the router sees (ROUTER_FEATURE_NAMES); `template` is the query's
    template answer, if it has one."""
    length = len(models.tokenizer.encode(query)) if models is not None else len(query.split())
    return [
        1.0 if hit is not None and hit.exact else 0.0,
        hit.similarity if hit is not None else 0.0,
        1.0 if template is not None else 0.0,
        min(length / 64.0, 1.0),
    ]


def run_tiers(state: DecisionState, ask: Ask, *, quick: bool) -> LocalDecision | None:
    """The one tier loop: the tiers in order, the first that answers wins, then the credit rule.

    In the quick pass (no models) None means a tier needs the models to decide."""
    t0 = time.perf_counter()
    decision = LocalDecision(router_features=router_features(state.models, ask.query, ask.hit, ask.template),
                             thresholds=state.thresholds)
    for tier in state.tiers:
        decision.tried.append(tier.name)
        outcome = tier.answer(ask, state, decision, quick=quick)
        if outcome is NEEDS_MODELS:
            return None
        if outcome:
            decision.credited = _credited(state, ask, decision, tier, quick=quick)
            break
    decision.latency_ms = (time.perf_counter() - t0) * 1000
    return decision


def _credited(state: DecisionState, ask: Ask, decision: LocalDecision, answered: TierPlugin, *,
              quick: bool) -> bool:
    """Whether no cheaper tier in the order, put after the one that answered, would have answered."""
    later = [t for t in state.tiers if t.cost < answered.cost and t.name not in decision.tried]
    probe = LocalDecision(router_features=decision.router_features, embedding=decision.embedding)
    for tier in later:
        outcome = tier.answer(replace(ask, use_router=False), state, probe, quick=quick)
        if outcome is True or outcome is NEEDS_MODELS:  # NEEDS_MODELS: unknown, so not credited
            return False
    return True


class LocalAnswerer:
    """Holds the published decision state and decides over it."""

    def __init__(self, state: DecisionState) -> None:
        self.state = state
        self._publishing = threading.Lock()

    def publish(self, **changes: Any) -> DecisionState:
        """Replace the state in one assignment; writers are serialized so none loses another's change."""
        with self._publishing:
            self.state = replace(self.state, **changes)
            return self.state

    def update_thresholds(self, **changes: Any) -> Thresholds:
        """Publish the current thresholds with `changes`, as one new state."""
        with self._publishing:
            self.state = replace(self.state, thresholds=replace(self.state.thresholds, **changes))
            return self.state.thresholds

    # Read-only views of the published state.
    @property
    def models(self) -> LocalModels | None:
        return self.state.models

    @property
    def index(self) -> LearnedIndex:
        return self.state.index

    @property
    def thresholds(self) -> Thresholds:
        return self.state.thresholds

    @property
    def semantic(self) -> SemanticStore | None:
        return self.state.semantic

    @property
    def tier_order(self) -> tuple[Tier, ...]:
        return self.state.tier_order

    def decide(self, query: str, norm_query: str, context: str, context_key: str,
               *, exclude_self: bool = False, use_router: bool = True,
               cancel: threading.Event | None = None) -> LocalDecision:
        """Try the tiers in order; the first accepted answer wins. ``cancel`` stops a decode between
        tokens (the question was cancelled): nothing half-generated is served."""
        state = self.state  # one read: the whole decision sees this state
        ask = state.ask(query, norm_query, context, context_key, exclude_self=exclude_self, use_router=use_router,
                        cancel=cancel)
        decision = run_tiers(state, ask, quick=False)
        assert decision is not None
        return decision

    def decide_without_models(self, query: str, norm_query: str, context_key: str) -> LocalDecision | None:
        """The answer of tiers that need no model (a template, the exact stored answer) when the
        order tries them before any tier that does; None when the models are needed to decide."""
        state = self.state
        return run_tiers(state, state.ask(query, norm_query, "", context_key), quick=True)
