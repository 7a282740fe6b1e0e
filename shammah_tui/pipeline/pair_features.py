"""Pair features and the acceptance model of the semantic store tier.

The semantic tier serves a stored answer for a *new* query when the new query asks
what a stored question asked. For a candidate (new query, stored query) — a nearest
neighbour by sentence-encoder cosine in the same context — `pair_features` turns the
pair into a small numeric vector, and `AcceptanceModel.p` maps it to p(the stored
answer is right for the new query). A threshold on p, chosen online from labels the
model was never fitted on (see `shammah_tui.pipeline.calibration`), decides.

Everything here is numpy + stdlib (plus the project's own text helpers): no torch at
inference, well under a millisecond per candidate.

The features (`FEATURE_NAMES`, in order; version `FEATURE_VERSION`):

============================  ===============================================================
``cos``                       encoder cosine of the two queries
``margin``                    ``cos`` minus the best cosine of any *other* stored candidate
                              of the new query that holds another answer (0 when there is
                              none): an ambiguous query has two close neighbours that answer
                              differently; two stored wordings of one question do not make it so
``lexical``                   `query_similarity` (the learned store's precision-first score)
``jaccard_content``           Jaccard of content words (stop words dropped, light stemming)
``jaccard_tokens``            Jaccard of all word tokens
``char3``                     Jaccard of character trigrams of the normalized texts
``unmatched_frac``            content words on one side only ÷ content words of both
``unmatched_max``             the larger count of one-side-only content words (either side)
``number_mismatch``           1 when some number is in one query and not in the other
``numbers_both``              1 when both queries carry numbers (and they match or not)
``negation_mismatch``         1 when a negation (not, no, never, without, …) is on one side only
``polarity_mismatch``         1 when a polarity word (best/worst, more/less, before/after,
                              advantages/disadvantages, …) is on one side only
``entity_mismatch``           capitalised words / acronyms (not sentence-initial, not "I") of
                              one query that the other does not contain, counted
``wh_mismatch``               1 when the question words differ (what / how / why / when /
                              where / who / which / yes-no); a request with none ("Name the
                              capital of Peru.") differs from no question word
``order_discordance``         share of discordant pairs in the order of the shared content
                              words ("Texas to California" vs "California to Texas")
``word_swap``                 1 when both queries are the very same words in another order
                              (PAWS: "say blocked if you were delivered" / "say delivered if you
                              were blocked"): the words say nothing of what is asked then. Only
                              all words: "What will AI be like in the future?" / "What is the
                              future of AI?" reorders the content words and asks the same
``name_swap``                 1 when each query names something the other never mentions
                              ("… in Marshall County" / "… in Washington County"): another thing
                              asked about, however close the rest
============================  ===============================================================

Lengths are not features, on purpose: fitted on Quora and PAWS-QQP, a length feature learns that
long, nearly identical pairs are PAWS's word-swapped negatives, a property of how that set was
made, and then refuses every lightly reworded long question (the GSM8K stream's reworded
problems: median p 0.16 with lengths, 0.86 with the shipped weights; bench/train_acceptance.py).

The encoder's own interaction vectors (``|u−v|``, ``u⊙v``) were measured and are not
part of the shipped feature set (see bench/train_acceptance.py): a head over them fitted on
30,000 public pairs ranks held-out pairs no better than the cosine alone, and stacked under the
pair features it adds nothing beyond noise.

How the tier uses it (measured in bench/paraphrase_stream.py): score the top-3 stored
neighbours, serve the best when p ≥ τ; τ is recomputed online from calibration labels (free
labels at forward time and spot checks) that the model was never fitted on. The shipped model
is used frozen: every label then calibrates. `AcceptanceModel.fit` exists for online
adaptation, but on the paraphrase stream a refit on half the labels lost more (fewer
calibration labels) than it gained.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shammah_tui.pipeline.text import expand_contractions, query_similarity

#: Bumped whenever a feature changes meaning: weights name the version they were fitted on.
FEATURE_VERSION = 3

FEATURE_NAMES: tuple[str, ...] = (
    "cos",
    "margin",
    "lexical",
    "jaccard_content",
    "jaccard_tokens",
    "char3",
    "unmatched_frac",
    "unmatched_max",
    "number_mismatch",
    "numbers_both",
    "negation_mismatch",
    "polarity_mismatch",
    "entity_mismatch",
    "wh_mismatch",
    "order_discordance",
    "word_swap",
    "name_swap",
)
N_FEATURES = len(FEATURE_NAMES)

#: The weights shipped with the package (fitted on public pairs, see its "provenance").
DEFAULT_WEIGHTS = Path(__file__).with_name("acceptance_qqp.json")

STOP_WORDS = frozenset("""
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me might more most must my myself of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves also get got ever really one ones way ways thing things
    much many lot lots anyone someone something anything please tell know like
""".split()) - frozenset({"not", "no", "nor", "without", "after", "before", "more", "most",
                          "few", "against", "above", "below", "up", "down", "off", "over",
                          "under", "how", "what", "when", "where", "which", "who", "whom", "why"})
# Question words and order-bearing words are content on purpose: they are compared by
# their own features (wh_mismatch, polarity_mismatch) as well.
STOP_WORDS = STOP_WORDS | frozenset({"what", "how", "which", "who", "whom"})

NEGATIONS = frozenset({"not", "no", "never", "cannot", "nor", "without", "none", "nothing", "neither"})

#: Words whose swap for their opposite turns a question around.
POLARITY_WORDS = frozenset("""
    best worst good bad better worse more less most least increase decrease increasing
    decreasing rise fall high low higher lower highest lowest before after pros cons
    advantages disadvantages advantage disadvantage positive negative rich poor richest
    poorest max min maximum minimum first last top bottom cheap expensive cheapest
    easiest hardest easy hard difference differences similar similarities full empty
    start stop begin end buy sell win lose male female men women boy girl past future
    old new young older younger benefits harms
""".split())

_WH = ("what", "how", "why", "when", "where", "who", "whom", "whose", "which")
# A question with no question word is a yes/no question when it opens with one of these; else it
# is a request ("Name the capital of Peru.") and asks what any question word would.
_AUXILIARIES = frozenset("""
    is are was were am be do does did can could will would shall should may might must has have had
""".split())

_WORD = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
# A word with a capital anywhere ("Paris", "NASA", "iPods"), matched whole.
_CAPITAL = re.compile(r"(?<![\w'-])[^\W\d_]*[A-Z][\w'-]*")
_SENTENCE_START = re.compile(r"(?:^|[.?!;]\s+)([A-Z][\w'-]*)")
# Question phrases that ask what a question word asks: "what is the number of" is "how many".
_WH_PHRASES = ((re.compile(r"\bwhat (?:is|are|was|were|will be) the (?:total )?number of\b"), "how many"),
               (re.compile(r"\bwhat (?:is|are|was|were|will be) the (?:total )?amount of\b"), "how much"))


def _stem(word: str) -> str:
    """A very light stemmer: plural and possessive endings only ("companies" → "company")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class _Parsed:
    tokens: tuple[str, ...]
    content: tuple[str, ...]  # in order, stemmed, stop words dropped
    numbers: frozenset[str]
    entities: frozenset[str]  # lower-cased capitalised words / acronyms
    wh: str
    norm: str


def _parse(text: str) -> _Parsed:
    text = unicodedata.normalize("NFKC", text)
    lowered = expand_contractions(text.casefold())
    for phrase, same in _WH_PHRASES:
        lowered = phrase.sub(same, lowered)
    tokens = tuple(_stem(t) for t in _WORD.findall(lowered))
    content = tuple(t for t in tokens if t not in STOP_WORDS and not t.isdigit())
    numbers = frozenset(n.replace(",", "") for n in _NUMBER.findall(text))
    starts = {m.start(1) for m in _SENTENCE_START.finditer(text)}
    entities = set()
    for match in _CAPITAL.finditer(text):
        word = match.group(0)
        if word == "I" or word.startswith("I'"):
            continue
        if match.start() in starts and not (len(word) > 1 and word.isupper()):
            continue  # a sentence-initial capital is no evidence of a name
        stem = _stem(word.casefold().replace("'s", "").strip("'-"))
        if stem and stem not in STOP_WORDS:
            entities.add(stem)
    wh = next((t for t in tokens if t in _WH), "yes-no" if tokens and tokens[0] in _AUXILIARIES else "request")
    norm = " ".join(tokens)
    return _Parsed(tokens, content, numbers, frozenset(entities), wh, norm)


_CODE_MARKS = frozenset("_([/~=<>{}|$")


def _code_tokens(text: str) -> set[str]:
    """Code-like tokens: flags, calls, paths, dotted names ("--soft", "my_list[::-1]", "os.path")."""
    found = set()
    for raw in text.split():
        token = raw.strip("\"'`").rstrip(".,;:!?")
        if len(token) < 2:
            continue
        inner_dot = "." in token.strip(".")
        if token.startswith("-") or inner_dot or any(ch in _CODE_MARKS for ch in token):
            found.add(token)
    return found


def refreshed_features(query: str, stored: str, features: Sequence[float]) -> np.ndarray:
    """A stored label's features recomputed from its texts under this `FEATURE_VERSION`; its
    cosine and margin (which need the encoder and the store of the time) are kept as they were."""
    cosine, margin = float(features[0]), float(features[1])
    return pair_features(query, stored, cosine, other_cosine=cosine - margin)


def stated_differently(a: str, b: str) -> bool:
    """True when two texts differ in something that changes what they say, whatever their wording:
    a number, a negation, a name one names and the other never mentions, or a piece of code."""
    pa, pb = _parse(a), _parse(b)
    if pa.numbers != pb.numbers:
        return True
    tokens_a, tokens_b = set(pa.tokens), set(pb.tokens)
    if (tokens_a & NEGATIONS) != (tokens_b & NEGATIONS):
        return True
    if any(e not in tokens_b for e in pa.entities) or any(e not in tokens_a for e in pb.entities):
        return True
    return _code_tokens(a) != _code_tokens(b)


def _jaccard(a: set | frozenset, b: set | frozenset) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _trigrams(text: str) -> set[str]:
    padded = f"  {text} "
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def _order_discordance(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of discordant pairs among content words that occur once on each side."""
    once_a = {w for w in a if a.count(w) == 1}
    once_b = {w for w in b if b.count(w) == 1}
    shared = once_a & once_b
    if len(shared) < 2:
        return 0.0
    pos_b = {w: i for i, w in enumerate(b)}
    seq = [pos_b[w] for w in a if w in shared]
    pairs = discordant = 0
    for i in range(len(seq)):
        for j in range(i + 1, len(seq)):
            pairs += 1
            discordant += seq[i] > seq[j]
    return discordant / pairs


def pair_features(query: str, stored: str, cosine: float, *, other_cosine: float | None = None) -> np.ndarray:
    """The feature vector (`FEATURE_NAMES` order, float64) of one candidate pair.

    ``query`` is the new query, ``stored`` the stored question, ``cosine`` their
    encoder cosine, ``other_cosine`` the best cosine of any other stored candidate of
    the same new query that holds another answer (None when there is none). Symmetric in the two texts except
    for ``margin``.
    """
    a, b = _parse(query), _parse(stored)
    set_a, set_b = set(a.content), set(b.content)
    only_a, only_b = set_a - set_b, set_b - set_a
    total = len(set_a) + len(set_b)
    tokens_a, tokens_b = set(a.tokens), set(b.tokens)
    negations_a, negations_b = tokens_a & NEGATIONS, tokens_b & NEGATIONS
    names_a = {e for e in a.entities if e not in tokens_b}
    names_b = {e for e in b.entities if e not in tokens_a}
    return np.array([
        float(cosine),
        float(cosine) - (float(other_cosine) if other_cosine is not None else 0.0),
        query_similarity(query, stored),
        _jaccard(set_a, set_b),
        _jaccard(tokens_a, tokens_b),
        _jaccard(_trigrams(a.norm), _trigrams(b.norm)),
        (len(only_a) + len(only_b)) / total if total else 0.0,
        float(max(len(only_a), len(only_b))),
        float(a.numbers != b.numbers),
        float(bool(a.numbers) and bool(b.numbers)),
        float(negations_a != negations_b),
        float((tokens_a & POLARITY_WORDS) != (tokens_b & POLARITY_WORDS)),
        float(len(names_a) + len(names_b)),
        float(a.wh != b.wh and "request" not in (a.wh, b.wh)),
        _order_discordance(a.content, b.content),
        float(a.tokens != b.tokens and sorted(a.tokens) == sorted(b.tokens)),
        float(bool(names_a) and bool(names_b)),
    ], dtype=np.float64)


# ---------------------------------------------------------------------------
# The model


def _sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40.0, 40.0)))


@dataclass
class AcceptanceModel:
    """p(the stored answer is right for the new query) from pair features.

    A logistic regression on standardized inputs, or (``hidden`` set) one tanh layer over them
    and a logistic output layer. The inputs are the features and, when
    ``gate`` = (lo, width) is set, each feature after ``margin`` multiplied by
    ``clip((cos − lo) / width, 0, 1)``: the same lexical evidence weighs more on a pair the
    encoder already finds close (a different number or name matters most at cos 0.95, hardly
    at 0.6). Features named in ``veto`` force p = 0 when non-zero, so no threshold serves the
    pair: the shipped model vetoes ``number_mismatch`` ("12 + 7" is never "12 + 8", and a GSM8K
    problem with other numbers is another problem), ``name_swap`` (Paris for Rome) and
    ``word_swap`` (the same words in another order, which PAWS-QQP shows is most often another
    question).

    Weights are JSON (`load`, `save`); the shipped file carries a ``provenance`` object (data
    rows, seed, feature version, training metric).

    `fit` refits the weights online on new labels, as a MAP estimate with a Gaussian prior
    centred on the current (shipped) weights, so a few hundred labels adapt the model without
    forgetting what public pairs taught it. Labels passed to `fit` must then never be used to
    calibrate the threshold.
    """

    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    gate: tuple[float, float] | None = None
    veto: tuple[str, ...] = ()
    feature_names: tuple[str, ...] = FEATURE_NAMES
    feature_version: int = FEATURE_VERSION
    provenance: dict = field(default_factory=dict)
    hidden: tuple[np.ndarray, np.ndarray] | None = None
    """An optional hidden layer (W (h, inputs), b (h,)), tanh: ``weights`` and ``bias`` are then the
    output layer over its h units. Fitted offline (bench/train_acceptance.py) where it beats the
    plain logistic regression on held-out pairs."""

    def __post_init__(self) -> None:
        self._veto_idx = [self.feature_names.index(v) for v in self.veto]
        expected = len(self.feature_names) + (len(self.feature_names) - 2 if self.gate else 0)
        for name in ("mean", "scale"):
            if len(getattr(self, name)) != expected:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, the inputs are {expected}")
        if self.hidden is not None:
            w, b = self.hidden
            if w.shape != (len(b), expected):
                raise ValueError(f"the hidden layer is {w.shape}, the inputs are {expected}")
            expected = len(b)
        if len(self.weights) != expected:
            raise ValueError(f"weights has {len(self.weights)} entries, the inputs are {expected}")

    # -- io -----------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path = DEFAULT_WEIGHTS) -> "AcceptanceModel":
        """The model in a weights file (default: the shipped `acceptance_qqp.json`)."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def from_dict(cls, data: dict) -> "AcceptanceModel":
        if data.get("feature_version") != FEATURE_VERSION:
            raise ValueError(f"weights are for feature version {data.get('feature_version')}, not {FEATURE_VERSION}")
        if tuple(data["feature_names"]) != FEATURE_NAMES:
            raise ValueError("weights name other features than this module computes")
        gate = data.get("gate")
        hidden = data.get("hidden")
        return cls(
            mean=np.asarray(data["mean"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
            weights=np.asarray(data["weights"], dtype=np.float64),
            bias=float(data["bias"]),
            gate=None if gate is None else (float(gate[0]), float(gate[1])),
            veto=tuple(data.get("veto", ())),
            provenance=dict(data.get("provenance", {})),
            hidden=None if hidden is None else (np.asarray(hidden["weights"], dtype=np.float64),
                                                np.asarray(hidden["bias"], dtype=np.float64)),
        )

    def to_dict(self) -> dict:
        return {
            "feature_version": self.feature_version,
            "feature_names": list(self.feature_names),
            "gate": None if self.gate is None else list(self.gate),
            "veto": list(self.veto),
            "mean": [round(float(x), 6) for x in self.mean],
            "scale": [round(float(x), 6) for x in self.scale],
            "weights": [round(float(x), 6) for x in self.weights],
            "bias": round(float(self.bias), 6),
            "hidden": None if self.hidden is None else {
                "weights": [[round(float(x), 6) for x in row] for row in self.hidden[0]],
                "bias": [round(float(x), 6) for x in self.hidden[1]]},
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @property
    def calibration_prior(self) -> dict:
        """What the online threshold (`calibration.served_error_threshold`) starts from: the
        recalibration σ(a + b·logit p) that the held-out check of these weights found, as keyword
        arguments (``prior``, ``prior_strength``, ``min_labels``). Weights without a held-out check
        start from "calibrated" at the default weak prior and 30 labels."""
        check = self.provenance.get("heldout_calibration") or {}
        if "recalibration_a" not in check:
            return {}
        return {"prior": (float(check["recalibration_a"]), float(check["recalibration_b"])),
                "prior_strength": float(check.get("online_prior_strength", 1.0)),
                "min_labels": int(check.get("online_min_labels", 30))}

    # -- inference ----------------------------------------------------------
    def _inputs(self, features: np.ndarray) -> np.ndarray:
        """What the output layer reads, for an (n, N_FEATURES) array: the standardized inputs, or
        the hidden layer's units over them."""
        x = (expand(features, self.gate) - self.mean) / self.scale
        if self.hidden is not None:
            x = np.tanh(x @ self.hidden[0].T + self.hidden[1])
        return x

    def p_many(self, features: np.ndarray) -> np.ndarray:
        """p for each row of an (n, N_FEATURES) array."""
        f = np.atleast_2d(np.asarray(features, dtype=np.float64))
        p = _sigmoid(self._inputs(f) @ self.weights + self.bias)
        if self._veto_idx:
            p = np.where((f[:, self._veto_idx] != 0).any(axis=1), 0.0, p)
        return p

    def p(self, features: np.ndarray) -> float:
        """p for one feature vector."""
        return float(self.p_many(features)[0])

    # -- online adaptation --------------------------------------------------
    def fit(self, features: np.ndarray, labels: Sequence[bool] | np.ndarray, *,
            prior_strength: float = 1.0, iterations: int = 50) -> "AcceptanceModel":
        """A new model whose weights are refitted on (features, labels).

        MAP logistic regression by Newton steps, Gaussian prior N(current weights,
        1/prior_strength) on the (output layer's) weights and bias; standardization, gate, veto
        and a hidden layer stay.
        Vetoed rows are left out (their p is 0 whatever the weights). Returns a new model;
        this one is unchanged.
        """
        f = np.atleast_2d(np.asarray(features, dtype=np.float64))
        y = np.asarray(labels, dtype=np.float64)
        if self._veto_idx:
            keep = ~(f[:, self._veto_idx] != 0).any(axis=1)
            f, y = f[keep], y[keep]
        theta = map_logistic(self._inputs(f), y, np.append(self.weights, self.bias), prior_strength, iterations)
        provenance = dict(self.provenance)
        provenance["online_fit"] = {"labels": int(len(y)), "prior_strength": prior_strength,
                                    "base": self.provenance.get("name", "unnamed")}
        return AcceptanceModel(self.mean.copy(), self.scale.copy(), theta[:-1].copy(), float(theta[-1]),
                               self.gate, self.veto, self.feature_names, self.feature_version, provenance,
                               self.hidden)


def expand(features: np.ndarray, gate: tuple[float, float] | None) -> np.ndarray:
    """The model inputs before standardization: the features, then (with a gate) every feature
    after ``margin`` times clip((cos − lo) / width, 0, 1)."""
    f = np.atleast_2d(np.asarray(features, dtype=np.float64))
    if gate is None:
        return f
    lo, width = gate
    g = np.clip((f[:, :1] - lo) / width, 0.0, 1.0)
    return np.hstack([f, g * f[:, 2:]])


def map_logistic(x: np.ndarray, y: np.ndarray, prior: np.ndarray, strength: float, iterations: int) -> np.ndarray:
    """Logistic regression with a Gaussian prior N(prior, 1/strength): Newton steps, each
    halved until the objective goes down (plain Newton overshoots on separable data)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    reg = np.full(len(prior), float(strength))

    def objective(theta: np.ndarray) -> float:
        z = design @ theta
        # -log-likelihood, stable: log(1 + e^z) - y z
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(reg * (theta - prior) ** 2))

    theta = prior.copy()
    current = objective(theta)
    for _ in range(iterations):
        p = _sigmoid(design @ theta)
        grad = design.T @ (p - y) + reg * (theta - prior)
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(reg)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-4:
            candidate = theta - t * step
            value = objective(candidate)
            if value <= current:
                break
            t /= 2
        else:
            break
        theta, improvement, current = candidate, current - value, value
        if np.max(np.abs(t * step)) < 1e-8 or improvement < 1e-10 * max(1.0, abs(current)):
            break
    return theta


def fit_logistic(features: np.ndarray, labels: Sequence[bool] | np.ndarray, *, l2: float = 1.0,
                 gate: tuple[float, float] | None = None, veto: Sequence[str] = (),
                 provenance: dict | None = None) -> AcceptanceModel:
    """A fresh acceptance model: expand, standardize, then an L2-regularized Newton fit
    (vetoed rows left out, as `AcceptanceModel.fit` does)."""
    f = np.atleast_2d(np.asarray(features, dtype=np.float64))
    y = np.asarray(labels, dtype=np.float64)
    veto_idx = [FEATURE_NAMES.index(v) for v in veto]
    if veto_idx:
        keep = ~(f[:, veto_idx] != 0).any(axis=1)
        f, y = f[keep], y[keep]
    x = expand(f, gate)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    theta = map_logistic((x - mean) / scale, y, np.zeros(x.shape[1] + 1), l2, 50)
    return AcceptanceModel(mean, scale, theta[:-1], float(theta[-1]), gate, tuple(veto),
                           provenance=dict(provenance or {}))
