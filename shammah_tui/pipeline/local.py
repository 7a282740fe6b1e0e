"""The local side of one query: router decision, then the tiers in order.

Synchronous and thread-safe (the engine runs it in a worker thread). It never
asks the teacher; the engine forwards when `LocalDecision.answer` is None.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, ClassVar

from shammah_tui.pipeline.agreement import agreement
from shammah_tui.pipeline.calibration import CLOSED
from shammah_tui.pipeline.learned import LearnedHit, LearnedIndex
from shammah_tui.kinds import Source, Tier
from shammah_tui.pipeline.templates import TemplateAnswer, template_answer

if TYPE_CHECKING:  # torch loads in the background; importing it here would delay the first frame
    from shammah_tui.models.bundle import LocalModels

#: Router features, in [0, 1]: exact learned hit, best learned similarity,
#: a template rule matches, query length (tokens / 64, capped).
ROUTER_FEATURE_NAMES = ("exact_hit", "similarity", "template", "length")
#: Validator features, in [0, 1]: generator confidence, candidate is neural, learned similarity.
VALIDATOR_FEATURE_NAMES = ("confidence", "neural", "similarity")


@dataclass
class Thresholds:
    """Calibrated decision thresholds and which models have learned anything yet."""

    STORE_KEY: ClassVar[str] = "thresholds"
    """Where the store keeps them (a settings row, as JSON)."""

    router: float = 0.5
    validator: float = CLOSED
    router_trained: bool = False
    validator_trained: bool = False
    generator_trained: bool = False
    estimated_error: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> Thresholds:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (ValueError, TypeError):
            return cls()


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
    learned_id: int | None = None
    """The stored answer served by the learned tier (its hit is counted)."""
    latency_ms: float = 0.0
    note: str = ""


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


def exact_reference(template: TemplateAnswer | None, hit: LearnedHit | None) -> str | None:
    """An answer known to be right for this very query: an exact rule's, or the teacher's own.

    A generated answer that contradicts one is never served, whatever the validator says.
    """
    if template is not None:
        return template.answer
    if hit is not None and hit.exact:
        return hit.entry.answer
    return None


class LocalAnswerer:
    """Runs the router and the tiers over the shared models and learned index."""

    def __init__(self, models: LocalModels | None, index: LearnedIndex, thresholds: Thresholds,
                 tier_order: tuple[Tier, ...], max_new_tokens: int = 64) -> None:
        self.models = models
        self.index = index
        self.thresholds = thresholds
        self.tier_order = tier_order
        self.max_new_tokens = max_new_tokens

    def decide(self, query: str, norm_query: str, context: str, context_key: str,
               *, exclude_self: bool = False, use_router: bool = True) -> LocalDecision:
        """Route, then try the tiers in order; the first accepted answer wins."""
        t0 = time.perf_counter()
        th = self.thresholds
        hit = self.index.lookup(norm_query, context_key, exclude_self=exclude_self)
        template = template_answer(query)  # computed once: a feature, a tier and a reference
        decision = LocalDecision(router_features=router_features(self.models, query, hit, template))
        models = self.models
        # An exact rule's answer is right by construction; the router only gates answers that may
        # be wrong (it never sees template queries in training: they are never forwarded).
        exact_rule = "template" in self.tier_order and decision.router_features[2] >= 1.0
        if use_router and models is not None and th.router_trained and not exact_rule:
            decision.router_p = models.router_p([query], [decision.router_features])[0]
            if decision.router_p < th.router:
                decision.note = "router: forward"
                decision.latency_ms = (time.perf_counter() - t0) * 1000
                return decision
        for tier in self.tier_order:
            decision.tried.append(tier)
            if tier == "template":
                if template is not None:
                    decision.answer, decision.source = template.answer, "template"
                    break
            elif tier == "learned" and hit is not None:
                if hit.exact:
                    decision.answer, decision.source = hit.entry.answer, "learned"
                    decision.learned_id, decision.confidence = hit.entry.id, 1.0
                    break
                if self.index.confident(hit) and models is not None and th.validator_trained:
                    p = models.validator_p([query], [hit.entry.answer], [[1.0, 0.0, hit.similarity]])[0]
                    if p >= th.validator:
                        decision.answer, decision.source = hit.entry.answer, "learned"
                        decision.learned_id = hit.entry.id
                        decision.validator_p, decision.confidence = p, hit.similarity
                        break
            elif tier == "neural" and models is not None and th.generator_trained and th.validator_trained:
                if th.validator >= CLOSED:
                    continue  # calibration found no safe threshold yet
                neural = models.answer(query, context, max_new_tokens=self.max_new_tokens)
                decision.neural_answer = neural.text
                if not neural.text.strip():
                    continue
                reference = exact_reference(template, hit)
                if reference is not None and not agreement(neural.text, reference).agrees:
                    decision.note = "neural answer contradicts an exact answer"
                    continue
                p = models.validator_p([query], [neural.text], [[neural.confidence, 1.0, 0.0]])[0]
                if p >= th.validator:
                    decision.answer, decision.source = neural.text, "neural"
                    decision.validator_p, decision.confidence = p, neural.confidence
                    break
        decision.latency_ms = (time.perf_counter() - t0) * 1000
        return decision
