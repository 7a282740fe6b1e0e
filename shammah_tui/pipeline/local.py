"""The local side of one query: the tiers in order, cheapest first, the router before the generator.

Synchronous and thread-safe (the engine runs it in a worker thread). It never
asks the teacher; the engine forwards when `LocalDecision.answer` is None.

A tier is credited only with what no cheaper tier would have given: with the default order
(template, learned, neural) the first answer is the cheapest, and with another order the cheaper
tiers the order skipped are asked too, so `LocalDecision.credited` says whether the answering
tier was the only one that could give it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from shammah_tui.kinds import Source, Tier
from shammah_tui.pipeline.agreement import agreement
from shammah_tui.pipeline.calibration import CLOSED
from shammah_tui.pipeline.learned import LearnedHit, LearnedIndex
from shammah_tui.pipeline.semantic import SemanticCandidate, SemanticStore
from shammah_tui.pipeline.templates import TemplateAnswer, template_answer

if TYPE_CHECKING:  # torch loads in the background; importing it here would delay the first frame
    from shammah_tui.models.bundle import LocalModels

#: Router features, in [0, 1]: exact learned hit, best learned similarity,
#: a template rule matches, query length (tokens / 64, capped).
ROUTER_FEATURE_NAMES = ("exact_hit", "similarity", "template", "length")
#: Validator features, in [0, 1]: generator confidence, candidate is neural, learned similarity.
VALIDATOR_FEATURE_NAMES = ("confidence", "neural", "similarity")
#: What each tier costs to try, cheapest first (measured: bench `pipeline_tier_ms`): a template
#: is a parse, a stored answer a dict lookup (or an embedding and a search), the generator a decode.
TIER_COST: dict[Tier, int] = {"template": 0, "learned": 1, "neural": 2}


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
    """The neural tier's estimated error at `validator`."""
    neural_score: str = "validator"
    """What `validator` is a threshold on: the validator's p ("validator") or the generator's own
    confidence ("confidence"), whichever serves more answers within the bound on the same
    out-of-sample points (a validator fitted on few mistakes can rank worse than the confidence)."""
    acceptance: float = CLOSED
    """The semantic store's threshold on the acceptance model's p."""
    acceptance_error: float | None = None
    """The learned tier's estimated error of served answers at `acceptance`."""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    def accepts(self, validator_p: float, confidence: float) -> bool:
        """Whether the neural tier serves an answer with this validator p and generator confidence."""
        score = confidence if self.neural_score == "confidence" else validator_p
        return self.validator < CLOSED and score >= self.validator

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
    credited: bool = True
    """False when a cheaper tier that the order skipped would have answered too."""
    semantic: SemanticCandidate | None = None
    """The best stored question by meaning, served or not (a forward labels it for free)."""
    embedding: np.ndarray | None = field(default=None, repr=False)
    """The query's embedding, when the semantic store computed one (kept with a learned answer)."""


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


@dataclass(frozen=True)
class _Ask:
    """What every tier looks at for one query, computed once."""

    query: str
    context: str
    context_key: str
    hit: LearnedHit | None
    template: TemplateAnswer | None
    own_id: int | None
    """The query's own stored answer, left out when it is asked as if new."""


class LocalAnswerer:
    """Runs the tiers and the router over the shared models, learned index and semantic store."""

    def __init__(self, models: LocalModels | None, index: LearnedIndex, thresholds: Thresholds,
                 tier_order: tuple[Tier, ...], max_new_tokens: int = 64,
                 semantic: SemanticStore | None = None) -> None:
        self.models = models
        self.index = index
        self.thresholds = thresholds
        self.tier_order = tier_order
        self.max_new_tokens = max_new_tokens
        self.semantic = semantic

    def decide(self, query: str, norm_query: str, context: str, context_key: str,
               *, exclude_self: bool = False, use_router: bool = True) -> LocalDecision:
        """Try the tiers in order; the first accepted answer wins."""
        t0 = time.perf_counter()
        hit = self.index.lookup(norm_query, context_key, exclude_self=exclude_self)
        # Self-evaluation asks "what if this question were new?": its own stored answer is out.
        own = self.index.lookup(norm_query, context_key) if exclude_self else None
        ask = _Ask(query, context, context_key, hit, template_answer(query),
                   own.entry.id if own is not None and own.exact else None)
        decision = LocalDecision(router_features=router_features(self.models, query, hit, ask.template))
        for tier in self.tier_order:
            decision.tried.append(tier)
            if self._try(tier, decision, ask, use_router):
                break
        if decision.source is not None and decision.source != "forward":
            answered: Tier = decision.source
            skipped = [t for t in self.tier_order if TIER_COST[t] < TIER_COST[answered] and t not in decision.tried]
            probe = LocalDecision(router_features=decision.router_features, embedding=decision.embedding)
            decision.credited = not any(self._try(t, probe, ask, False) for t in skipped)
        decision.latency_ms = (time.perf_counter() - t0) * 1000
        return decision

    def decide_without_models(self, query: str, norm_query: str, context_key: str) -> LocalDecision | None:
        """The answer of a tier that needs no model (a template, the exact stored answer) when the
        order tries it before any tier that does; None when the models are needed to decide."""
        t0 = time.perf_counter()
        template = template_answer(query)
        tried: list[Tier] = []
        for tier in self.tier_order:
            tried.append(tier)
            if tier == "template" and template is not None:
                return LocalDecision(answer=template.answer, source="template", tried=tried,
                                     router_features=router_features(self.models, query, None, template),
                                     latency_ms=(time.perf_counter() - t0) * 1000)
            if tier == "learned":
                hit = self.index.lookup(norm_query, context_key)
                if hit is None or not hit.exact:
                    return None  # a paraphrase needs the encoder
                # Credited only when the cheaper template tier, if the order skipped it, has no answer.
                credited = template is None or "template" not in self.tier_order
                return LocalDecision(answer=hit.entry.answer, source="learned", learned_id=hit.entry.id,
                                     confidence=1.0, tried=tried, credited=credited,
                                     router_features=router_features(self.models, query, hit, template),
                                     latency_ms=(time.perf_counter() - t0) * 1000)
            if tier == "neural":
                return None
        return None

    # ---------------------------------------------------------------- the tiers
    def _try(self, tier: Tier, decision: LocalDecision, ask: _Ask, use_router: bool) -> bool:
        """Try one tier; True (and `decision` filled) when it answers."""
        if tier == "template":
            if ask.template is None:
                return False
            decision.answer, decision.source = ask.template.answer, "template"
            return True
        if tier == "learned":
            return self._learned(decision, ask)
        return self._neural(decision, ask, use_router)

    def _learned(self, decision: LocalDecision, ask: _Ask) -> bool:
        """The teacher's own answer to this question, else to one that means the same."""
        query, hit = ask.query, ask.hit
        if hit is not None and hit.exact:
            decision.answer, decision.source = hit.entry.answer, "learned"
            decision.learned_id, decision.confidence = hit.entry.id, 1.0
            return True
        semantic = self.semantic
        if semantic is not None and semantic.ready:
            if decision.embedding is None:
                decision.embedding = semantic.embed([query])[0]
            candidate = semantic.best(query, decision.embedding, ask.context_key, exclude_id=ask.own_id)
            decision.semantic = candidate
            if candidate is not None and candidate.p >= self.thresholds.acceptance:
                decision.answer, decision.source = candidate.entry.answer, "learned"
                decision.learned_id, decision.confidence = candidate.entry.id, candidate.p
                return True
            return False
        # No encoder: the precision-first lexical similarity decides alone.
        if self.index.confident(hit) and hit is not None:
            decision.answer, decision.source = hit.entry.answer, "learned"
            decision.learned_id, decision.confidence = hit.entry.id, hit.similarity
            return True
        return False

    def _neural(self, decision: LocalDecision, ask: _Ask, use_router: bool) -> bool:
        """The generator's answer, when the validator's p clears its calibrated threshold."""
        models, th, query = self.models, self.thresholds, ask.query
        if models is None or not (th.generator_trained and th.validator_trained) or th.validator >= CLOSED:
            return False  # nothing learned yet, or calibration found no safe threshold
        if use_router and th.router_trained:
            decision.router_p = models.router_p([query], [decision.router_features])[0]
            if decision.router_p < th.router:
                decision.note = "router: forward"
                return False
        neural = models.answer(query, ask.context, max_new_tokens=self.max_new_tokens)
        decision.neural_answer = neural.text
        if not neural.text.strip():
            return False
        reference = exact_reference(ask.template, ask.hit)
        if reference is not None and not agreement(neural.text, reference).agrees:
            decision.note = "neural answer contradicts an exact answer"
            return False
        p = models.validator_p([query], [neural.text], [[neural.confidence, 1.0, 0.0]])[0]
        if not th.accepts(p, neural.confidence):
            return False
        decision.answer, decision.source = neural.text, "neural"
        decision.validator_p, decision.confidence = p, neural.confidence
        return True
