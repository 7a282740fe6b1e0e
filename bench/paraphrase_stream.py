"""Paraphrase and math streams through a simulated semantic store tier, side by side with baselines.

Research-grade simulator of DESIGN.md section 2 (exact hit → semantic store → forward) for the
section 7 paraphrase target. Nothing here runs the engine: the lead turns it into a bench over
the real ``batch --json`` path later, reusing the importable pieces:

- ``build_qqp_stream(csv_path, seed, pairs=None)`` → ``list[StreamItem]``: each pair's question1,
  its question2 20–200 queries later, exact repeats (~15 % of the stream). ``kind`` ∈ {first,
  duplicate_partner, near_miss_partner, repeat}; ``key`` says which answer is right.
- ``build_gsm8k_stream(jsonl_path, seed)`` → ``(items, facts)``: new problems, exact repeats,
  lightly reworded repeats (`reword`), and number variants (an earlier problem with other numbers:
  a new problem that looks alike). ``kind`` ∈ {new, repeat, reworded, variant}.
- ``answer_for(key, call_no, facts=None)`` → the loopback teacher's answer: the same key's answer
  comes back in other words on every call (agrees with itself under
  `shammah_tui.pipeline.agreement.agreement`), different keys never agree.
- ``simulate(items, vectors, policy, facts=None)`` → ``RunResult`` for one policy: exact cache,
  lexical similarity (the project's `LearnedIndex`), encoder cosine at a fixed τ, or the
  acceptance model with its threshold chosen online from free labels and spot checks.

The acceptance tier, as simulated (DESIGN.md section 2): an exact store hit is served; else the
top-3 stored questions by cosine are scored by `AcceptanceModel` and the best is served when
p ≥ τ_t, else the query is forwarded. On a forward the free label — `agreement` of the
teacher's answer with each candidate's stored answer — is recorded before the answer is stored;
a served answer is spot-checked with probability 0.1 (also a label). A query's labels go either
to fitting (online refit, off by default) or to calibration, by a fixed hash of its text, so
calibration never sees a label the model was fitted on. τ_t is recomputed after every query:

- rule "overall" (recommended): the estimated error of ALL local answers — exact hits, right by
  construction, included — stays ≤ δ; rule "tier": the semantic answers' own error ≤ δ.
- estimator "platt" (recommended, `platt_threshold`): a 2-parameter recalibration curve
  P(right | p) fitted on the calibration labels, averaged over the p of every query that
  reached the tier, 90 % posterior upper bound. Estimator "laplace" (`weighted_threshold`): the
  project's `calibrate` rule, (e + 1) / (n + 2) over the labelled points above τ, with each
  label weighted by 1 / p(labelled) (a spot check stands for 1/ε served answers).

Usage (embeddings are one pluggable call, see `make_embedder`; cached on disk)::

    python bench/paraphrase_stream.py [--qqp ../shared/data/qqp_dev.csv] [--gsm8k ...]
        [--weights shammah_tui/pipeline/acceptance_qqp.json] [--cache /tmp/acceptance/emb_cache] [--json]

The evaluation stream uses the pairs the shipped weights were NOT fitted on (the half named in
the weights' provenance).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from shammah_tui.pipeline.agreement import agreement  # noqa: E402
from shammah_tui.pipeline.calibration import CLOSED  # noqa: E402
from shammah_tui.pipeline.learned import LearnedIndex  # noqa: E402
from shammah_tui.pipeline.pair_features import (  # noqa: E402
    FEATURE_NAMES,
    AcceptanceModel,
    map_logistic,
    fit_logistic,
    pair_features,
)
from shammah_tui.core.text import normalize_query  # noqa: E402
from shammah_tui.pipeline.text import SIMILARITY_THRESHOLD  # noqa: E402
from shammah_tui.core.records import LearnedAnswer  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
QQP_CSV = DATA / "qqp_dev.csv"
GSM8K_JSONL = DATA / "gsm8k_dev.jsonl"

Embedder = Callable[[Sequence[str]], np.ndarray]


# ============================================================================ streams


@dataclass(frozen=True)
class StreamItem:
    """One query of a stream: its text, the key of the answer that is right for it, and why it is there."""

    query: str
    key: str
    kind: str
    pair: int = -1


def load_qqp(csv_path: str | Path = QQP_CSV) -> list[tuple[str, str, bool]]:
    """(question1, question2, is_duplicate) rows in file order."""
    with open(csv_path, newline="", encoding="utf-8") as f:
        return [(r["question1"], r["question2"], r["is_duplicate"].strip() == "1") for r in csv.DictReader(f)]


def split_pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pair indices split 50/50 by a seeded shuffle: (fit half, evaluation half), each sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2:])


def qqp_keys(rows: Sequence[tuple[str, str, bool]]) -> dict[str, str]:
    """The answer key of every question text: duplicates (transitively) share one key.

    A text that occurs in several pairs keeps one key; a non-duplicate partner gets its own
    unless the file links it to its first question through other duplicate pairs.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    norms = {}
    for q1, q2, _ in rows:
        for q in (q1, q2):
            norms.setdefault(q, normalize_query(q))
            find(norms[q])
    for q1, q2, dup in rows:
        if dup:
            a, b = find(norms[q1]), find(norms[q2])
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = sorted({find(n) for n in parent})
    key_of_root = {r: f"qqp:{hashlib.sha256(r.encode()).hexdigest()[:12]}" for r in roots}
    return {q: key_of_root[find(n)] for q, n in norms.items()}


def _interleave(firsts: list[StreamItem], partners: list[StreamItem | None], rng: random.Random,
                repeat_share: float, gap: tuple[int, int]) -> list[StreamItem]:
    """Firsts in order; each partner ``gap`` queries (uniform) after its first; exact repeats of
    earlier non-repeat queries mixed in so that they make up ``repeat_share`` of the stream."""
    partner_share = sum(p is not None for p in partners) / max(len(firsts), 1)
    # R = r (F + R) at the steps no partner is due, and R = s (F + P + R): solve for r.
    s = repeat_share
    r = s * (1 + partner_share) / (1 + s * partner_share)
    out: list[StreamItem] = []
    asked: list[StreamItem] = []
    due: list[tuple[int, int, StreamItem, int]] = []  # (due position, tiebreak, partner, first's position)
    i = 0
    while i < len(firsts) or due:
        due.sort(key=lambda d: (d[0], d[1]))
        # the tail (no firsts left) does not wait for a partner's drawn gap, only for the minimum
        ready = due and (due[0][0] <= len(out) or (i >= len(firsts) and due[0][3] + gap[0] <= len(out)))
        if ready:
            item = due.pop(0)[2]
            out.append(item)
            asked.append(item)
            continue
        if asked and (rng.random() < r or i >= len(firsts)):  # the tail waits with repeats
            src = rng.choice(asked)
            out.append(StreamItem(src.query, src.key, "repeat", src.pair))
            continue
        first = firsts[i]
        out.append(first)
        asked.append(first)
        if partners[i] is not None:
            due.append((len(out) - 1 + rng.randint(*gap), i, partners[i], len(out) - 1))
        i += 1
    return out


def build_qqp_stream(csv_path: str | Path = QQP_CSV, seed: int = 0, pairs: Sequence[int] | None = None,
                     repeat_share: float = 0.15, gap: tuple[int, int] = (20, 200), *,
                     rows: Sequence[tuple[str, str, bool]] | None = None,
                     keys: dict[str, str] | None = None) -> list[StreamItem]:
    """The paraphrase stream over the given pair indices (all pairs when None).

    Each pair's question1 ("first"), then 20–200 queries later its question2
    ("duplicate_partner" or "near_miss_partner"), and exact repeats of earlier queries making
    up ``repeat_share`` of the stream. Pair order is a seeded shuffle. Keys: `qqp_keys`.
    ``rows`` (and their ``keys``) replace the file when given: several files played as one.
    """
    rows = load_qqp(csv_path) if rows is None else rows
    keys = qqp_keys(rows) if keys is None else keys
    rng = random.Random(seed)
    order = list(range(len(rows))) if pairs is None else [int(p) for p in pairs]
    rng.shuffle(order)
    firsts, partners = [], []
    for p in order:
        q1, q2, dup = rows[p]
        firsts.append(StreamItem(q1, keys[q1], "first", p))
        partners.append(StreamItem(q2, keys[q2], "duplicate_partner" if dup else "near_miss_partner", p))
    return _interleave(firsts, partners, rng, repeat_share, gap)


# ---------------------------------------------------------------------------- math

_CONTRACT = [("do not", "don't"), ("does not", "doesn't"), ("did not", "didn't"), ("is not", "isn't"),
             ("are not", "aren't"), ("was not", "wasn't"), ("can not", "can't"), ("cannot", "can't"),
             ("It is", "It's"), ("it is", "it's"), ("He is", "He's"), ("She is", "She's"),
             ("he is", "he's"), ("she is", "she's"), ("There are", "There're"), ("will not", "won't"),
             ("They are", "They're"), ("they are", "they're"), ("I am", "I'm"), ("She has", "She's got")]
_SYNONYMS = [("buys", "purchases"), ("bought", "purchased"), ("buy", "purchase"), ("each", "every"),
             ("gets", "receives"), ("received", "got"), ("altogether", "in total"), ("total", "overall"),
             ("needs", "requires"), ("wants", "would like"), ("How much money", "What amount of money"),
             ("store", "shop"), ("kids", "children"), ("twice", "two times"), ("made", "earned"),
             ("large", "big"), ("small", "little"), ("quickly", "fast"), ("gave", "handed"),
             ("starts", "begins"), ("finished", "completed"), ("car", "automobile")]


def reword(question: str, rng: random.Random) -> str:
    """A light rewording a person might type when asking the same problem again.

    1–3 of: a contraction made or expanded; "How many" ↔ "What is the number of"; a comma
    dropped or a "?" made "." inside; one synonym swapped (buys → purchases, each → every, …).
    Numbers are never touched. The result always normalizes differently from the question.
    """
    def contraction(t: str) -> str | None:
        opts = [(a, b) for a, b in _CONTRACT if re.search(rf"\b{re.escape(a)}\b", t)]
        opts += [(b, a) for a, b in _CONTRACT if re.search(rf"(?<!\w){re.escape(b)}(?!\w)", t)]
        if not opts:
            return None
        a, b = rng.choice(opts)
        return re.sub(rf"(?<!\w){re.escape(a)}(?!\w)", b, t, count=1)

    def how_many(t: str) -> str | None:
        if "How many" in t:
            return t.replace("How many", "What is the number of", 1)
        if "how many" in t:
            return t.replace("how many", "what is the number of", 1)
        if "What is the number of" in t:
            return t.replace("What is the number of", "How many", 1)
        return None

    def punctuation(t: str) -> str | None:
        commas = [m.start() for m in re.finditer(r",(?=\s)", t)]
        if commas and rng.random() < 0.7:
            c = rng.choice(commas)
            return t[:c] + t[c + 1:]
        m = re.search(r"\.\s+(If|How|What|Then)\b", t)
        if m:
            return t[:m.start()] + ";" + t[m.start() + 1:]
        return None

    def synonym(t: str) -> str | None:
        opts = [(a, b) for a, b in _SYNONYMS if re.search(rf"\b{re.escape(a)}\b", t)]
        if not opts:
            return None
        a, b = rng.choice(opts)
        return re.sub(rf"\b{re.escape(a)}\b", b, t, count=1)

    edits = [contraction, how_many, punctuation, synonym]
    text = question
    for edit in rng.sample(edits, k=rng.randint(1, 3)):
        text = edit(text) or text
    if normalize_query(text) == normalize_query(question):
        for edit in edits:
            new = edit(text)
            if new and normalize_query(new) != normalize_query(question):
                return new
        return "Can you solve this: " + question
    return text


_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.]\d)")


def vary_numbers(question: str, solution: str, rng: random.Random) -> tuple[str, str, str]:
    """An earlier problem with other numbers: (question, solution, final number). Each distinct
    number in the question is changed (same size); the solution text gets the same swaps and
    a changed final number, so the teacher's answer reads alike but is another answer."""
    mapping: dict[str, str] = {}
    for n in _NUMBER_IN_TEXT.findall(question):
        if n in mapping:
            continue
        if "." in n:
            new = f"{float(n) + rng.choice([0.5, 1.5, 2.5]):g}"
        else:
            v = int(n)
            new = str(v + rng.choice([1, 2, 3, 5, 10]) if v < 20 else v + rng.choice([5, 10, 20, 50]))
        mapping[n] = new
    if not mapping:
        mapping = {}
    swap = lambda t: _NUMBER_IN_TEXT.sub(lambda m: mapping.get(m.group(0), m.group(0)), t)  # noqa: E731
    final = _final_number(solution) or "0"
    new_final = mapping.get(final, str(int(float(final)) + 7) if re.fullmatch(r"-?\d+(\.\d+)?", final) else final + "1")
    body = swap(solution.split("####")[0])
    return swap(question), body + f"#### {new_final}", new_final


def build_gsm8k_stream(jsonl_path: str | Path = GSM8K_JSONL, seed: int = 0, n_problems: int | None = None,
                       repeat_share: float = 0.15, reword_share: float = 0.15, variant_share: float = 0.08
                       ) -> tuple[list[StreamItem], dict[str, tuple[str, str]]]:
    """The math stream and the teacher's facts (key → (worked solution, final number)).

    New problems in a seeded order; mixed in, by share of the whole stream: exact repeats,
    light rewordings (`reword`) of earlier problems, and number variants of earlier problems
    (`vary_numbers`, a new problem with its own key).
    """
    rows = [json.loads(line) for line in Path(jsonl_path).read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    if n_problems is not None:
        order = order[:n_problems]
    facts: dict[str, tuple[str, str]] = {}
    out: list[StreamItem] = []
    asked: list[StreamItem] = []
    other = repeat_share + reword_share + variant_share
    for p in order:
        while asked and rng.random() < other:
            r = rng.random() * other
            src = rng.choice(asked)
            base = rows[src.pair]
            if r < repeat_share:
                out.append(StreamItem(src.query, src.key, "repeat", src.pair))
            elif r < repeat_share + reword_share:
                out.append(StreamItem(reword(base["question"], rng), f"gsm:{src.pair}", "reworded", src.pair))
            else:
                q, sol, gold = vary_numbers(base["question"], base["solution"], rng)
                if normalize_query(q) == normalize_query(base["question"]):
                    continue  # no numbers to vary
                key = f"gsm:{src.pair}:v{len(out)}"
                facts[key] = (sol, gold)
                out.append(StreamItem(q, key, "variant", src.pair))
        row = rows[p]
        key = f"gsm:{p}"
        facts[key] = (row["solution"], str(row["gold"]))
        item = StreamItem(row["question"], key, "new", p)
        out.append(item)
        asked.append(item)
    return out, facts


# ---------------------------------------------------------------------------- the loopback teacher

_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
_LEADS = ["", "Sure.", "In short,", "Briefly:", "Well,", "Answer:"]
_CLOSINGS = ["The answer is {n}.", "So the answer is {n}.", "That makes {n} in all: the answer is {n}.",
             "Final answer: {n}", "Therefore the answer is {n}."]
_CONNECTIVES = [("Then", "Next"), ("So", "Thus"), ("First", "To start,")]


def _fact_words(key: str, n: int = 24) -> list[str]:
    rng = random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))
    return ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))) for _ in range(n)]


def _final_number(text: str) -> str | None:
    """The last number of a text (commas dropped), as the math stream scores answers."""
    found = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text.split("####")[-1] if "####" in text else text)
    if not found:
        return None
    value = found[-1].replace(",", "").rstrip(".")
    try:
        f = float(value)
    except ValueError:
        return value
    return str(int(f)) if f == int(f) else f"{f:g}"


def answer_for(key: str, call_no: int, facts: dict[str, tuple[str, str]] | None = None) -> str:
    """The loopback teacher's answer for ``key`` on its ``call_no``-th call (0-based).

    "Claude never answers twice alike": the same key's answer comes back reworded on every
    call (another lead-in, one word swapped; for math another closing and connectives), so two
    answers of one key agree under `agreement` (token-overlap F1 ≥ 0.8), and answers of
    different keys never do (their fact words are drawn from the key's hash; a math answer is
    the worked solution of its own problem).
    """
    if facts is not None and key in facts:
        solution, gold = facts[key]
        lines = [ln.strip() for ln in re.sub(r"<<[^>]*>>", "", solution.split("####")[0]).splitlines() if ln.strip()]
        body = " ".join(ln if ln[-1] in ".!?" else ln + "." for ln in lines)
        a, b = _CONNECTIVES[call_no % len(_CONNECTIVES)]
        if call_no % 2:
            body = re.sub(rf"\b{a}\b", b, body)
        closing = _CLOSINGS[call_no % len(_CLOSINGS)].format(n=gold)
        return f"{body} {closing}"
    words = _fact_words(key)
    swap = (call_no * 7 + 3) % len(words)
    words = words[:swap] + [words[swap] + "s"] + words[swap + 1:]
    lead = _LEADS[call_no % len(_LEADS)]
    sentence = " ".join(words)
    return f"{lead} {sentence[0].upper()}{sentence[1:]}.".strip()


def final_number(text: str) -> str | None:
    """The final number a (math) answer gives, as the stream scores it."""
    return _final_number(text)


_LAST_SENTENCE = re.compile(r"(?:^|[.!?:]\s)([^.!?]*(?:\d[\d,]*(?:\.\d+)?)[^.!?\d]*)[.!?]?\s*$")


def final_value_agreement(local: str, teacher: str) -> bool:
    """`agreement`, except that when both answers END on a number ("… The answer is 23.")
    those final numbers decide. A stand-in for what DESIGN.md asks of agreement ("exact match
    of the final value where the task has one"): the project's `agreement` reads a final value
    only from answers of at most a six-word lead-in, so two long worked answers with other
    numbers fall to the token-overlap rule and "agree" (measured: 93 % of number variants)."""
    a, b = _LAST_SENTENCE.search(local.strip()), _LAST_SENTENCE.search(teacher.strip())
    if a and b and len(a.group(1).split()) <= 12 and len(b.group(1).split()) <= 12:
        return _final_number(a.group(1)) == _final_number(b.group(1))
    return agreement(local, teacher).agrees


# ============================================================================ embeddings


class EmbeddingCache:
    """Text → unit vector, computed once by ``embed`` and kept on disk (texts.json + vectors.npy)."""

    def __init__(self, folder: str | Path, embed: Embedder | None = None) -> None:
        self.folder = Path(folder)
        self.embed_fn = embed
        self.vectors: dict[str, np.ndarray] = {}
        for names in sorted(self.folder.glob("*.json")):
            npy = names.with_suffix(".npy")
            if npy.exists():
                texts = json.loads(names.read_text(encoding="utf-8"))
                matrix = np.load(npy)
                self.vectors.update(zip(texts, matrix))

    def __call__(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            if self.embed_fn is None:
                self.embed_fn = make_embedder()
            matrix = np.asarray(self.embed_fn(missing), dtype=np.float32)
            self.vectors.update(zip(missing, matrix))
            self.folder.mkdir(parents=True, exist_ok=True)
            stamp = f"added-{int(time.time() * 1000)}"
            (self.folder / f"{stamp}.json").write_text(json.dumps(missing), encoding="utf-8")
            np.save(self.folder / f"{stamp}.npy", matrix)
        return {t: self.vectors[t] for t in texts}


def make_embedder() -> Embedder:
    """The project's encoder when its folder is found, else sentence-transformers (same vectors
    within 1e-5). The one place to plug another embedding function in."""
    try:
        from shammah_tui.models.encoder import SentenceEncoder, locate_encoder

        folder = locate_encoder(None)
        if folder is not None:
            import torch

            torch.set_num_threads(1)
            encoder = SentenceEncoder.load(folder)
            return lambda texts: encoder.embed(list(texts), batch_size=64)
    except ImportError:
        pass
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download: the weights must already be cached
    from sentence_transformers import SentenceTransformer  # research fallback

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    return lambda texts: model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


# ============================================================================ the simulator


@dataclass
class Policy:
    """What decides a non-exact query.

    kind: "exact" (exact cache only), "lexical" (`query_similarity` ≥ threshold over the
    project's LearnedIndex), "cosine" (best cosine ≥ threshold), "acceptance" (acceptance model
    p ≥ an online threshold).
    """

    name: str
    kind: str
    threshold: float = SIMILARITY_THRESHOLD
    model: AcceptanceModel | None = None
    delta: float = 0.02
    rule: str = "tier"  # "tier": the semantic tier's own error ≤ δ; "overall": all local answers' error ≤ δ
    ipw: bool = True  # weight labels by 1 / p(labelled): spot checks stand for all served answers
    weight_cap: float = float("inf")  # cap on an IPW weight (bias for less variance)
    estimator: str = "laplace"  # "laplace" (IPW-weighted `calibrate`) or "platt" (`platt_threshold`)
    quantile: float = 0.9  # the upper quantile the "platt" estimator bounds
    min_labels: int = 30  # "platt": calibration labels with p ≥ 0.3 needed before a threshold opens
    spot_rate: float = 0.1
    top_k: int = 3
    fit_share: float = 0.0  # share of queries whose labels refit the model (the rest calibrate)
    refit_every: int = 50
    prior_strength: float = 1.0
    label_noise: float = 0.0  # flip a free label's verdict with this probability (robustness)
    label_fn: str = "agreement"  # "agreement" (the project's) or "final_value" (`final_value_agreement`)
    refit_gate: bool = True  # keep an online refit only when it beats the model in use on calibration labels
    strata: bool = False  # a threshold per calibration stratum (`stratum_of`): numeric / text (measured: no gain)
    seed: int = 0


@dataclass
class Outcome:
    kind: str
    tier: str  # exact | semantic | forward
    correct: bool | None
    p: float | None = None
    tau: float | None = None


@dataclass
class RunResult:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    opened_at: int | None = None
    labels_at_open: int | None = None
    calib_labels: int = 0
    fit_labels: int = 0
    spot_checks: int = 0
    label_errors: int = 0
    final_tau: float = CLOSED
    tau_trace: list[tuple[int, float]] = field(default_factory=list)
    refits_kept: int = 0
    opened: dict = field(default_factory=dict)  # stratum → (query index, calibration labels) when it opened
    final_taus: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self, partner_kinds: tuple[str, str] = ("duplicate_partner", "near_miss_partner")) -> dict:
        served = [o for o in self.outcomes if o.tier != "forward"]
        sem = [o for o in served if o.tier == "semantic"]
        by_kind: dict[str, dict] = {}
        for o in self.outcomes:
            d = by_kind.setdefault(o.kind, {"n": 0, "served": 0, "served_right": 0})
            d["n"] += 1
            if o.tier != "forward":
                d["served"] += 1
                d["served_right"] += bool(o.correct)
        pos, neg = partner_kinds
        out = {
            "policy": self.name,
            "queries": len(self.outcomes),
            "served": len(served),
            "served_wrong": sum(not o.correct for o in served),
            "precision": (sum(bool(o.correct) for o in served) / len(served)) if served else float("nan"),
            "semantic_served": len(sem),
            "semantic_precision": (sum(bool(o.correct) for o in sem) / len(sem)) if sem else float("nan"),
            f"{pos}_recall": by_kind.get(pos, {}).get("served_right", 0) / max(by_kind.get(pos, {}).get("n", 0), 1),
            f"{neg}_served": by_kind.get(neg, {}).get("served", 0) / max(by_kind.get(neg, {}).get("n", 0), 1),
            "by_kind": by_kind,
            "opened_at": self.opened_at,
            "labels_at_open": self.labels_at_open,
            "calib_labels": self.calib_labels,
            "fit_labels": self.fit_labels,
            "spot_checks": self.spot_checks,
            "free_label_errors": self.label_errors,
            "refits_kept": self.refits_kept,
            "final_tau": self.final_tau,
            "final_taus": {k: round(v, 4) for k, v in self.final_taus.items()},
            "opened": self.opened,
            "seconds": round(self.seconds, 1),
        }
        return out


def cosine_placeholder_model() -> AcceptanceModel:
    """A model before any fitting: p is a steep logistic of the cosine alone (p = 0.5 at 0.9)."""
    from shammah_tui.pipeline.pair_features import N_FEATURES

    w = np.zeros(N_FEATURES)
    w[0] = 40.0
    return AcceptanceModel(np.zeros(N_FEATURES), np.ones(N_FEATURES), w, -36.0,
                           provenance={"name": "cosine-placeholder"})


def weighted_threshold(p: np.ndarray, y: np.ndarray, w: np.ndarray, delta: float, *,
                       n_exact: int = 0, semantic_total: float | None = None) -> tuple[float, float, float]:
    """The lowest threshold whose accepted labelled points keep the estimated error ≤ δ.

    Points are accepted from the highest p down; only cuts between distinct p count. With
    weights w = 1 / p(labelled) (inverse propensity: a spot check done on 1 in 10 served answers
    stands for 10), the error rate of an accepted set is the weighted rate, Laplace-smoothed on
    the effective sample size n_eff = (Σw)² / Σw²:  (rate · n_eff + 1) / (n_eff + 2). With
    unit weights this is exactly `calibration.calibrate`.

    ``semantic_total`` set ("overall" rule): the bound is on all local answers — the expected
    wrong semantic answers ÷ (exact hits + expected semantic answers), where the semantic
    answers a threshold would serve are Σw(accepted) / Σw(all) × semantic_total.

    Returns (threshold, estimate, accepted weight).
    """
    if len(p) == 0:
        return CLOSED, 1.0, 0.0
    order = np.argsort(-p, kind="stable")
    ps, ys, ws = p[order], y[order], w[order]
    W = np.cumsum(ws)
    W2 = np.cumsum(ws * ws)
    E = np.cumsum(ws * (1 - ys))
    n_eff = W * W / W2
    rate = (E / W * n_eff + 1) / (n_eff + 2)
    if semantic_total is not None:
        served = W / W[-1] * semantic_total
        est = rate * served / (n_exact + served)
    else:
        est = rate
    distinct = np.r_[ps[1:] != ps[:-1], True]
    ok = np.where((est <= delta) & distinct)[0]
    if len(ok) == 0:
        return CLOSED, 1.0, 0.0
    k = ok[-1]
    return float(ps[k]), float(est[k]), float(W[k])


class _Store:
    """The stored questions of one context: texts, keys, answers, unit vectors."""

    def __init__(self, dim: int = 384, capacity: int = 8192) -> None:
        self.E = np.zeros((capacity, dim), dtype=np.float32)
        self.texts: list[str] = []
        self.keys: list[str] = []
        self.answers: list[str] = []
        self.exact: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str, key: str, answer: str, vector: np.ndarray) -> None:
        n = len(self.texts)
        if n == len(self.E):
            self.E = np.vstack([self.E, np.zeros_like(self.E)])
        self.E[n] = vector
        self.texts.append(text)
        self.keys.append(key)
        self.answers.append(answer)
        self.exact[normalize_query(text)] = n


def _hash_side(text: str, share: float) -> bool:
    """True when this query's labels go to fitting (a fixed hash of its text, not random)."""
    if share <= 0:
        return False
    h = int.from_bytes(hashlib.sha256(("fit:" + normalize_query(text)).encode()).digest()[:4], "big")
    return h / 2**32 < share


def candidates(store: _Store, query: str, vector: np.ndarray, top_k: int) -> tuple[list[int], np.ndarray]:
    """Top-k stored rows by cosine and the feature vector of each (margin to the best other)."""
    n = len(store)
    cos = store.E[:n] @ vector
    k = min(top_k, n)
    top = np.argpartition(-cos, k - 1)[:k] if n > k else np.arange(n)
    top = top[np.argsort(-cos[top])]
    feats = []
    for j in top:
        # As the app does: a neighbour holding the same answer (here: the same key) is no rival.
        others = [cos[t] for t in top if t != j and store.keys[t] != store.keys[j]]
        feats.append(pair_features(query, store.texts[j], float(cos[j]), other_cosine=max(others) if others else None))
    return [int(j) for j in top], np.array(feats)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def platt_threshold(p_labelled: np.ndarray, y: np.ndarray, p_population: np.ndarray, delta: float, *,
                    n_exact: int | None = None, quantile: float = 0.9, floor: float = 0.3,
                    min_labels: int = 30, draws: int = 100, seed: int = 0) -> tuple[float, float]:
    """The lowest threshold whose served answers' estimated error stays ≤ δ, estimated from a
    recalibration curve instead of the labelled subset alone.

    1. Recalibrate: P(right | p) = σ(a + b·logit p), fitted (Newton, 2 parameters, prior
       a ~ N(0, 1), b ~ N(1, 1): "the model is calibrated" until labels say otherwise) on the
       labels with p ≥ ``floor``. Labels are sampled by p alone (forwarded when p < τ, spot
       checks when served), so P(right | p) needs no weighting.
    2. The error of a threshold τ is the mean of 1 − P(right | p) over the *population*: every
       query that reached the semantic tier so far with p ≥ τ — their p is known whether or
       not they were labelled, so only the 2-parameter curve carries sampling noise.
    3. Uncertainty: ``draws`` samples of (a, b) from the Laplace approximation of the
       posterior; the estimate is their ``quantile`` (an upper bound, 90 % by default).

    ``n_exact`` set ("overall" rule): the bound is on all local answers, exact hits (right by
    construction) included: est · S / (S + n_exact), S the population above τ.
    Returns (threshold, estimate); (CLOSED, 1.0) while fewer than ``min_labels`` labels have
    p ≥ floor.
    """
    keep = p_labelled >= floor
    if keep.sum() < min_labels or len(p_population) == 0:
        return CLOSED, 1.0
    z, t = _logit(p_labelled[keep]), y[keep]
    design = np.stack([np.ones_like(z), z], axis=1)
    # (b, a) as the project's damped Newton orders them: weights, then bias
    b, a = map_logistic(z[:, None], t, np.array([1.0, 0.0]), 1.0, 50)
    theta = np.array([a, b])
    if b <= 0:
        return CLOSED, 1.0  # p does not even rank right and wrong: no threshold is safe
    q = 1 / (1 + np.exp(-np.clip(design @ theta, -40, 40)))
    hess = (design * (q * (1 - q))[:, None]).T @ design + np.eye(2)
    chol = np.linalg.cholesky(np.linalg.inv(hess))
    samples = theta + np.random.default_rng(seed).standard_normal((draws, 2)) @ chol.T  # (draws, 2)
    pop = np.sort(p_population[p_population >= floor])[::-1]
    if len(pop) == 0:
        return CLOSED, 1.0
    zp = _logit(pop)
    wrong = 1 / (1 + np.exp(np.clip(samples[:, :1] + samples[:, 1:] * zp[None, :], -40, 40)))  # 1 − σ(a + b z)
    count = np.arange(1, len(pop) + 1)
    est = np.quantile(np.cumsum(wrong, axis=1) / count, quantile, axis=0)
    if n_exact is not None:
        est = est * count / (count + n_exact)
    distinct = np.r_[pop[1:] != pop[:-1], True]
    ok = np.where((est <= delta) & distinct)[0]
    if len(ok) == 0:
        return CLOSED, 1.0
    return float(pop[ok[-1]]), float(est[ok[-1]])


class _Calibrator:
    """Calibration labels (never fitted on), the population of semantic-tier queries, and the
    online threshold."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.F: list[np.ndarray] = []
        self.y: list[float] = []
        self.w: list[float] = []
        self.p = np.zeros(0)
        self.F_pop: list[np.ndarray] = []
        self.p_pop = np.zeros(0)
        self.tau = CLOSED

    def add(self, features: np.ndarray, ok: bool, propensity: float, model: AcceptanceModel) -> None:
        self.F.append(features)
        self.y.append(1.0 if ok else 0.0)
        self.w.append(min(1.0 / propensity, self.policy.weight_cap) if self.policy.ipw else 1.0)
        self.p = np.append(self.p, model.p(features))

    def observe(self, features: np.ndarray, p: float) -> None:
        """A query reached the semantic tier; ``features`` of its best candidate."""
        self.F_pop.append(features)
        self.p_pop = np.append(self.p_pop, p)

    def rescore(self, model: AcceptanceModel) -> None:
        if self.F:
            self.p = model.p_many(np.array(self.F))
        if self.F_pop:
            self.p_pop = model.p_many(np.array(self.F_pop))

    def update(self, n_exact: int, semantic_total: int) -> float:
        overall = self.policy.rule == "overall"
        if self.policy.estimator == "platt":
            self.tau, _ = platt_threshold(self.p, np.array(self.y), self.p_pop, self.policy.delta,
                                          n_exact=n_exact if overall else None, quantile=self.policy.quantile,
                                          min_labels=self.policy.min_labels)
        else:
            self.tau, _, _ = weighted_threshold(self.p, np.array(self.y), np.array(self.w), self.policy.delta,
                                                n_exact=n_exact, semantic_total=semantic_total if overall else None)
        return self.tau


def _log_loss(model: AcceptanceModel, calibs: dict[str, "_Calibrator"]) -> float:
    """Mean log-loss of ``model`` on all calibration labels."""
    F = [f for c in calibs.values() for f in c.F]
    if not F:
        return float("inf")
    p = np.clip(model.p_many(np.array(F)), 1e-6, 1 - 1e-6)
    y = np.array([v for c in calibs.values() for v in c.y])
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


_NUMBERS_BOTH = FEATURE_NAMES.index("numbers_both")
_DIGIT = re.compile(r"\d")


def stratum_of(features: np.ndarray) -> str:
    """The calibration stratum of a candidate: "numeric" when both queries carry numbers (the
    veto has already refused any pair whose numbers differ), else "text". Each stratum gets
    its own threshold, as vCache gives each prompt its own: a reworded arithmetic problem with
    the same numbers is far safer than a paraphrase of the same cosine."""
    return "numeric" if features[_NUMBERS_BOTH] else "text"


def stratum_of_query(query: str) -> str:
    """The stratum an exact hit counts in (for the "overall" rule): numeric when it has a digit."""
    return "numeric" if _DIGIT.search(query) else "text"


def simulate(items: Sequence[StreamItem], vectors: dict[str, np.ndarray], policy: Policy,
             facts: dict[str, tuple[str, str]] | None = None, judge: Callable[[StreamItem, str], bool] | None = None,
             state: dict | None = None) -> RunResult:
    """Run one policy over a stream. Served answers are judged right when they are the answer of
    the query's own key (``judge`` overrides: the math stream compares final numbers).

    ``state`` (optional, mutated): carry calibration labels and the model from an earlier
    stream, as one engine does across conversations.
    """
    started = time.perf_counter()
    rng = random.Random(policy.seed)
    store = _Store()
    lexical = LearnedIndex() if policy.kind == "lexical" else None
    calls: dict[str, int] = {}
    res = RunResult(policy.name)
    state = state if state is not None else {}
    model = state.get("model", policy.model)
    calibs: dict[str, _Calibrator] = state.get("calibs", {})
    for c in calibs.values():
        c.policy = policy
    fit_F: list[np.ndarray] = state.get("fit_F", [])
    fit_y: list[float] = state.get("fit_y", [])
    fitted_at = len(fit_y)
    base_model = state.get("base_model", policy.model)
    n_exact: dict[str, int] = state.get("n_exact", {})
    semantic_total: dict[str, int] = state.get("semantic_total", {})
    if policy.kind == "acceptance" and model is None:
        model = base_model = cosine_placeholder_model()
    if policy.kind == "acceptance":
        for name, c in calibs.items():
            c.rescore(model)
            c.update(n_exact.get(name, 0), semantic_total.get(name, 0))

    def calib_for(name: str) -> _Calibrator:
        if name not in calibs:
            calibs[name] = _Calibrator(policy)
        return calibs[name]

    def teacher(key: str) -> str:
        n = calls.get(key, 0)
        calls[key] = n + 1
        return answer_for(key, n, facts)

    def right(item: StreamItem, row: int) -> bool:
        if judge is not None:
            return judge(item, store.answers[row])
        return store.keys[row] == item.key

    def free_label(stored_answer: str, teacher_answer: str, truth: bool) -> bool:
        if policy.label_fn == "final_value":
            ok = final_value_agreement(stored_answer, teacher_answer)
        else:
            ok = agreement(stored_answer, teacher_answer).agrees
        if policy.label_noise and rng.random() < policy.label_noise:
            ok = not ok
        res.label_errors += ok != truth
        return ok

    for t, item in enumerate(items):
        vec = vectors[item.query]
        norm = normalize_query(item.query)
        row = store.exact.get(norm)
        if row is not None:
            res.outcomes.append(Outcome(item.kind, "exact", right(item, row)))
            name = stratum_of_query(item.query) if policy.strata else "all"
            n_exact[name] = n_exact.get(name, 0) + 1
            continue
        if policy.kind == "exact" or len(store) == 0:
            answer = teacher(item.key)
            store.add(item.query, item.key, answer, vec)
            if lexical is not None:
                lexical.add(LearnedAnswer(len(store), norm, "", item.query, answer, "teacher"))
            res.outcomes.append(Outcome(item.kind, "forward", None))
            continue
        if policy.kind in ("cosine", "lexical"):
            if policy.kind == "cosine":
                cos = store.E[:len(store)] @ vec
                best = int(np.argmax(cos))
                score = float(cos[best])
            else:
                hit = lexical.lookup(norm, "")
                best, score = (hit.entry.id - 1, hit.similarity) if hit else (0, 0.0)
            if score >= policy.threshold:
                res.outcomes.append(Outcome(item.kind, "semantic", right(item, best), score, policy.threshold))
                continue
            answer = teacher(item.key)
            store.add(item.query, item.key, answer, vec)
            if lexical is not None:
                lexical.add(LearnedAnswer(len(store), norm, "", item.query, answer, "teacher"))
            res.outcomes.append(Outcome(item.kind, "forward", None, score, policy.threshold))
            continue

        # acceptance model
        rows, F = candidates(store, item.query, vec, policy.top_k)
        ps = model.p_many(F)
        b = int(np.argmax(ps))
        name = stratum_of(F[b]) if policy.strata else "all"
        calib = calib_for(name)
        semantic_total[name] = semantic_total.get(name, 0) + 1
        calib.observe(F[b], float(ps[b]))
        tau = calib.tau
        to_fit = _hash_side(item.query, policy.fit_share)
        if ps[b] >= tau:
            ok = right(item, rows[b])
            res.outcomes.append(Outcome(item.kind, "semantic", ok, float(ps[b]), tau))
            if rng.random() < policy.spot_rate:
                res.spot_checks += 1
                answer = teacher(item.key)
                label = free_label(store.answers[rows[b]], answer, ok)
                if to_fit:
                    fit_F.append(F[b])
                    fit_y.append(float(label))
                else:
                    calib.add(F[b], label, policy.spot_rate, model)
                store.add(item.query, item.key, answer, vec)
        else:
            res.outcomes.append(Outcome(item.kind, "forward", None, float(ps[b]), tau))
            answer = teacher(item.key)
            for r, j in enumerate(rows):
                label = free_label(store.answers[j], answer, store.keys[j] == item.key)
                if to_fit:
                    fit_F.append(F[r])
                    fit_y.append(float(label))
                elif r == b:
                    calib.add(F[r], label, 1.0, model)
            store.add(item.query, item.key, answer, vec)
        # refit on the fitting labels; with refit_gate, keep the refit only when it predicts the
        # calibration labels (never fitted on by either model) better than the model in use
        if policy.fit_share > 0 and len(fit_y) - fitted_at >= policy.refit_every:
            y_arr = np.array(fit_y)
            if y_arr.sum() >= 5 and (1 - y_arr).sum() >= 5:
                if base_model.provenance.get("name") == "cosine-placeholder":
                    candidate = fit_logistic(np.array(fit_F), y_arr, l2=policy.prior_strength, gate=(0.8, 0.2),
                                             veto=("number_mismatch",), provenance={"name": "online"})
                else:
                    candidate = base_model.fit(np.array(fit_F), y_arr, prior_strength=policy.prior_strength)
                if not policy.refit_gate or _log_loss(candidate, calibs) < _log_loss(model, calibs):
                    model = candidate
                    res.refits_kept += 1
                    for c in calibs.values():
                        c.rescore(model)
            fitted_at = len(fit_y)
        for sname, c in calibs.items():
            old = c.tau
            c.update(n_exact.get(sname, 0), semantic_total.get(sname, 0))
            if c.tau != old:
                res.tau_trace.append((t, c.tau) if sname in ("all", "text") else (t, c.tau, sname))
            if sname not in res.opened and c.tau < CLOSED:
                res.opened[sname] = (t, len(c.y))
                if res.opened_at is None:
                    res.opened_at, res.labels_at_open = t, sum(len(x.y) for x in calibs.values())
    res.calib_labels = sum(len(c.y) for c in calibs.values())
    res.fit_labels = len(fit_y)
    res.final_tau = min((c.tau for c in calibs.values()), default=CLOSED)
    res.final_taus = {k: c.tau for k, c in calibs.items()}
    res.seconds = time.perf_counter() - started
    state.update(model=model, calibs=calibs, fit_F=fit_F, fit_y=fit_y, base_model=base_model,
                 n_exact=n_exact, semantic_total=semantic_total)
    return res


def math_judge(facts: dict[str, tuple[str, str]]) -> Callable[[StreamItem, str], bool]:
    """A served math answer is right when its final number is the query's own final number."""
    def judge(item: StreamItem, answer: str) -> bool:
        return final_number(answer) == final_number("#### " + facts[item.key][1])
    return judge


# ============================================================================ the side-by-side run


def hindsight_cosine(items, vectors, judge=None, facts=None, grid=None, min_precision: float = 0.98,
                     max_near_miss: float = 0.02, pos: str = "duplicate_partner", neg: str = "near_miss_partner"
                     ) -> tuple[float, dict | None]:
    """The fixed cosine τ with the best recall of ``pos`` at served precision ≥ min_precision
    (and ``neg`` served ≤ max_near_miss), chosen by running every τ of the grid over the very
    stream it is scored on: hindsight, an upper bound for any fixed cosine threshold."""
    grid = grid if grid is not None else [round(x, 3) for x in np.arange(0.80, 1.0001, 0.005)]
    best: tuple[float, dict | None] = (CLOSED, None)
    for tau in grid:
        policy = Policy(f"cosine ≥ {tau}", "cosine", threshold=tau)
        s = simulate(items, vectors, policy, facts=facts, judge=judge).summary((pos, neg))
        if s["precision"] >= min_precision and s[f"{neg}_served"] <= max_near_miss and (
                best[1] is None or s[f"{pos}_recall"] > best[1][f"{pos}_recall"]):
            best = (tau, s)
    return best


def eval_pairs(model: AcceptanceModel, n_pairs: int) -> np.ndarray:
    """The qqp_dev.csv pairs a model was never fitted on: all of them when its provenance says it
    was fitted on other files (``fit_half`` "none"), else the half of the seeded split it left out."""
    prov = model.provenance
    if prov.get("fit_half") == "none":
        return np.arange(n_pairs)
    fit_half, eval_half = split_pairs(n_pairs, prov.get("split_seed", 0))
    return eval_half if prov.get("fit_half", "first") == "first" else fit_half


def qqp_policies(model: AcceptanceModel, seed: int = 0) -> list[Policy]:
    """The acceptance-model rows of the paraphrase table (the baselines are added by `run_qqp`)."""
    return [
        Policy("acceptance, online τ: overall δ=2%, recalibration bound (recommended)", "acceptance", model=model,
               rule="overall", estimator="platt", seed=seed),
        Policy("acceptance, online τ: overall δ=2%, IPW Laplace", "acceptance", model=model, rule="overall",
               estimator="laplace", seed=seed),
        Policy("acceptance, online τ: semantic tier alone δ=2%", "acceptance", model=model, rule="tier",
               estimator="platt", seed=seed),
        Policy("acceptance + online refit (50/50 label split)", "acceptance", model=model, rule="overall",
               estimator="platt", fit_share=0.5, seed=seed),
        Policy("no pre-training: online-only model (50/50 split)", "acceptance", model=None, rule="overall",
               estimator="platt", fit_share=0.5, seed=seed),
    ]


def run_qqp(csv_path: str | Path, model: AcceptanceModel, cache: EmbeddingCache, seed: int = 0,
            pairs: Sequence[int] | None = None, acceptance: bool = True) -> tuple[list[StreamItem], list[dict]]:
    """Every policy over one paraphrase stream: the side-by-side table's rows (summaries)."""
    items = build_qqp_stream(csv_path, seed=seed, pairs=pairs)
    vectors = cache([it.query for it in items])
    rows = [simulate(items, vectors, pol).summary() for pol in (
        Policy("exact-match cache", "exact"),
        Policy("lexical similarity ≥ 0.9", "lexical", threshold=SIMILARITY_THRESHOLD),
        Policy("cosine ≥ 0.8", "cosine", threshold=0.8))]
    tau, best = hindsight_cosine(items, vectors)
    if best is not None:
        rows.append(dict(best, policy=f"cosine ≥ {tau} (best τ in hindsight)"))
    if acceptance:
        rows += [simulate(items, vectors, pol).summary() for pol in qqp_policies(model, seed)]
    return items, rows


def _math_summary(s: dict) -> dict:
    bk = s["by_kind"]
    new = [bk.get(k, {"n": 0, "served": 0, "served_right": 0}) for k in ("new", "variant")]
    rep = [bk.get(k, {"n": 0, "served": 0, "served_right": 0}) for k in ("repeat", "reworded")]
    return dict(s,
                new_wrongly_served=sum(d["served"] - d["served_right"] for d in new) / max(sum(d["n"] for d in new), 1),
                variant_served=bk.get("variant", {}).get("served", 0) / max(bk.get("variant", {}).get("n", 0), 1),
                repeats_served_right=sum(d["served_right"] for d in rep) / max(sum(d["n"] for d in rep), 1),
                reworded_served_right=(bk.get("reworded", {}).get("served_right", 0)
                                       / max(bk.get("reworded", {}).get("n", 0), 1)))


def run_gsm8k(jsonl_path: str | Path, model: AcceptanceModel, cache: EmbeddingCache, seed: int = 0,
              qqp_items: Sequence[StreamItem] | None = None, qqp_vectors: dict | None = None) -> list[dict]:
    """Every policy over the math stream. The acceptance model runs with a cold threshold (the
    math stream alone), with the final-value label fix, and carried on from the paraphrase
    stream's calibration state (one engine, two conversations)."""
    items, facts = build_gsm8k_stream(jsonl_path, seed=seed)
    vectors = cache([it.query for it in items])
    judge = math_judge(facts)
    kinds = ("reworded", "new")

    def run(pol: Policy, state: dict | None = None) -> dict:
        return _math_summary(simulate(items, vectors, pol, facts=facts, judge=judge, state=state).summary(kinds))

    rows = [run(Policy("exact-match cache", "exact")), run(Policy("lexical similarity ≥ 0.9", "lexical")),
            run(Policy("cosine ≥ 0.8", "cosine", threshold=0.8)),
            run(Policy("cosine ≥ 0.95", "cosine", threshold=0.95))]
    base = dict(model=model, rule="overall", estimator="platt", seed=seed)
    rows.append(run(Policy("acceptance, cold τ, labels by `agreement`", "acceptance", **base)))
    rows.append(run(Policy("acceptance, cold τ, labels by final value", "acceptance", label_fn="final_value", **base)))
    rows.append(run(Policy("acceptance, IPW Laplace, cold τ, final value", "acceptance", label_fn="final_value",
                           **dict(base, estimator="laplace"))))
    if qqp_items is not None:
        state: dict = {}
        pol = Policy("acceptance, τ carried on from the paraphrase stream", "acceptance", label_fn="final_value",
                     **base)
        simulate(qqp_items, qqp_vectors, pol, state=state)
        rows.append(run(pol, state))
        state = {}
        no_veto = AcceptanceModel(model.mean, model.scale, model.weights, model.bias, model.gate, (),
                                  provenance=model.provenance)
        pol = Policy("acceptance, τ carried on, no number veto", "acceptance", label_fn="final_value",
                     **dict(base, model=no_veto))
        simulate(qqp_items, qqp_vectors, pol, state=state)
        rows.append(run(pol, state))
    return rows


def _opened(s: dict) -> str:
    return "never" if s["opened_at"] is None else f"query {s['opened_at']}, {s['labels_at_open']} labels"


def print_tables(qqp_rows: list[dict], math_rows: list[dict], n_qqp: int, n_math: int, seed: int) -> None:
    print(f"Paraphrase stream (seed {seed}): {n_qqp} queries over the held-out pairs of qqp_dev.csv")
    print("| policy | precision (all served) | duplicate-partner recall | near-miss served | served | wrong "
          "| semantic-tier precision | threshold opened |")
    print("|---|---|---|---|---|---|---|---|")
    for s in qqp_rows:
        opened = _opened(s) if "acceptance" in s["policy"] or "online" in s["policy"] else "fixed"
        print(f"| {s['policy']} | {s['precision']:.3f} | {s['duplicate_partner_recall']:.3f} | "
              f"{s['near_miss_partner_served']:.3f} | {s['served']} | {s['served_wrong']} | "
              f"{s['semantic_precision']:.3f} | {opened} |")
    print(f"\nMath stream (seed {seed}): {n_math} queries from gsm8k_dev.jsonl")
    print("| policy | new problems wrongly served (incl. number variants) | variants served | repeats served right "
          "(exact + reworded) | reworded served right | precision | threshold opened |")
    print("|---|---|---|---|---|---|---|")
    for s in math_rows:
        opened = _opened(s) if "acceptance" in s["policy"] else "fixed"
        print(f"| {s['policy']} | {s['new_wrongly_served']:.3f} | {s['variant_served']:.3f} | "
              f"{s['repeats_served_right']:.3f} | {s['reworded_served_right']:.3f} | {s['precision']:.3f} | {opened} |")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--qqp", default=str(QQP_CSV))
    ap.add_argument("--gsm8k", default=str(GSM8K_JSONL))
    ap.add_argument("--weights", default=str(ROOT / "shammah_tui" / "pipeline" / "acceptance_qqp.json"))
    ap.add_argument("--cache", default="/tmp/acceptance/emb_cache")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    model = AcceptanceModel.load(args.weights)
    cache = EmbeddingCache(args.cache)
    qqp_items, qqp_rows = run_qqp(args.qqp, model, cache, seed=args.seed,
                                  pairs=eval_pairs(model, len(load_qqp(args.qqp))))
    qqp_vectors = cache([it.query for it in qqp_items])
    math_rows = run_gsm8k(args.gsm8k, model, cache, seed=args.seed, qqp_items=qqp_items, qqp_vectors=qqp_vectors)
    if args.json:
        drop = ("by_kind",)
        print(json.dumps({"qqp": [{k: v for k, v in r.items() if k not in drop} for r in qqp_rows],
                          "gsm8k": [{k: v for k, v in r.items() if k not in drop} for r in math_rows]}, default=float))
        return 0
    print_tables(qqp_rows, math_rows, len(qqp_items), sum(1 for _ in build_gsm8k_stream(args.gsm8k, seed=args.seed)[0]),
                 args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
