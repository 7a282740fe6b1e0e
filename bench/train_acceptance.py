"""Fit the shipped acceptance weights (shammah_tui/pipeline/acceptance_qqp.json) on public pairs,
and measure them on pairs never fitted on.

Data, read in place from ../shared/data (never copied into the repo):

- fitted on: ``qqp_train.csv`` (18,286 Quora pairs), played as paraphrase streams together with
  ``paws_qqp.csv`` (11,899 PAWS-QQP pairs, word-swapped hard negatives and positives), whose
  queries' candidates are not fitted on but checked (``paws_check``: see ``main``);
- measured on: ``qqp_dev.csv`` (3,000 pairs, no question in common with the fit files), the very
  stream bench/learning_streams.py plays through the app.

Training examples are the candidates the semantic tier would really see: the fit pairs are
shuffled (seed `FIT_SEED`) into chunks of `CHUNK` pairs, the size of the evaluation stream, so the
store is as crowded as there; each chunk is played as a paraphrase stream with every query
forwarded and stored, and for every non-exact query each of its top-3 stored neighbours by cosine
becomes a (features, same-answer-key) example.

Models, each kept only if it beats the simpler one on the held-out stream (``--compare`` prints
them all, with the frozen cosine, as AUC / recall at precision ≥ 0.98 over candidates and the
best duplicate-partner recall of a fixed threshold on the stream in hindsight):

- ``lr``: logistic regression on the standardized `pair_features`,
  number, name and word-order vetoes (p = 0), L2 chosen by 2-fold cross-validation over fit pairs;
- ``mlp``: one hidden layer over the same inputs (``--model auto`` ships it where it wins; it
  is not shipped: see ``main``);
- ``head``: a logistic head over the encoder's two vectors (|u−v|, u⊙v), stacked under the LR.

Calibration of the shipped p is checked on the held-out candidates (reliability by bins; the
recalibration σ(a + b·logit p) that `calibration.served_error_threshold` starts from).

    python bench/train_acceptance.py [--cache DIR] [--out PATH] [--model lr|auto] [--compare]
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import paraphrase_stream as ps  # noqa: E402

from shammah_tui.pipeline.pair_features import (  # noqa: E402
    FEATURE_NAMES,
    FEATURE_VERSION,
    AcceptanceModel,
    fit_logistic,
    map_logistic,
)
from shammah_tui.core.text import normalize_query  # noqa: E402

OUT = ps.ROOT / "shammah_tui" / "pipeline" / "acceptance_qqp.json"
FIT_CSVS = (ps.DATA / "qqp_train.csv", ps.DATA / "paws_qqp.csv")
EVAL_CSV = ps.QQP_CSV
FIT_SEED = 0
EVAL_SEED = 0
CHUNK = 3000
TOP_K = 3
L2_GRID = (1.0, 10.0, 100.0)
#: No cos-gated copies of the features: on held-out Quora candidates they gained little (hindsight
#: recall 0.302 against 0.288) and halved the margin between a reworded math problem and the new
#: problems nearest to it.
GATE = None
VETO = ("number_mismatch", "name_swap", "word_swap")
#: What the held-out calibration check is worth online, in labels; and the labels the online
#: threshold waits for before it may open (30 without a checked prior).
PRIOR_LABELS = 20
ONLINE_MIN_LABELS = 10


@dataclass
class Candidates:
    """Every top-k candidate of every non-exact query of one or more streams (all queries forwarded)."""

    F: np.ndarray  # (n, N_FEATURES)
    y: np.ndarray  # 1 when the candidate's answer key is the query's
    pair: np.ndarray  # the pair the query comes from
    group: np.ndarray  # which query (index into kinds)
    kinds: list[str]  # kind of each non-exact query
    n_exact: int  # exact repeats (served right by the exact cache in every policy)
    texts: list[tuple[str, str]] = field(default_factory=list)  # (query, stored question) per row


def collect_candidates(items: Sequence[ps.StreamItem], vectors: dict[str, np.ndarray],
                       top_k: int = TOP_K) -> Candidates:
    """Play a stream with every query forwarded and stored; record each non-exact query's
    top-k stored neighbours by cosine as (features, same-answer-key) examples."""
    store = ps._Store()
    F, y, pair, group, kinds, texts = [], [], [], [], [], []
    n_exact = 0
    for item in items:
        if normalize_query(item.query) in store.exact:
            n_exact += 1
            continue
        if len(store):
            rows, feats = ps.candidates(store, item.query, vectors[item.query], top_k)
            for r, j in enumerate(rows):
                F.append(feats[r])
                y.append(store.keys[j] == item.key)
                pair.append(item.pair)
                group.append(len(kinds))
                texts.append((item.query, store.texts[j]))
            kinds.append(item.kind)
        store.add(item.query, item.key, "", vectors[item.query])
    return Candidates(np.array(F), np.array(y, dtype=float), np.array(pair), np.array(group), kinds, n_exact, texts)


def concat(cs: Sequence[Candidates]) -> Candidates:
    groups, offset = [], 0
    for c in cs:
        groups.append(c.group + offset)
        offset += len(c.kinds)
    return Candidates(np.vstack([c.F for c in cs]), np.concatenate([c.y for c in cs]),
                      np.concatenate([c.pair for c in cs]), np.concatenate(groups),
                      [k for c in cs for k in c.kinds], sum(c.n_exact for c in cs),
                      [t for c in cs for t in c.texts])


def fit_rows() -> tuple[list[tuple[str, str, bool]], list[str]]:
    """The fit files' pairs, one list (and which file each row came from)."""
    rows: list[tuple[str, str, bool]] = []
    origin: list[str] = []
    for path in FIT_CSVS:
        got = ps.load_qqp(path)
        rows += got
        origin += [path.name] * len(got)
    return rows, origin


def fit_candidates(rows: Sequence[tuple[str, str, bool]], vectors: dict[str, np.ndarray],
                   seed: int = FIT_SEED) -> Candidates:
    """The fit pairs shuffled into chunks of CHUNK pairs, each played as one stream."""
    keys = ps.qqp_keys(rows)
    order = np.random.default_rng(seed).permutation(len(rows))
    chunks = [order[i:i + CHUNK] for i in range(0, len(order), CHUNK)]
    return concat([collect_candidates(ps.build_qqp_stream(seed=seed + k, pairs=chunk, rows=rows, keys=keys), vectors)
                   for k, chunk in enumerate(chunks)])


# ---------------------------------------------------------------------------- metrics


def hindsight_recall(c: Candidates, scores: np.ndarray, min_precision: float = 0.98,
                     max_near_miss: float = 0.02) -> dict:
    """The best duplicate-partner recall any fixed threshold on ``scores`` reaches on this
    stream while served precision (exact hits included) ≥ min_precision and near-miss
    partners served ≤ max_near_miss: an upper bound for an online threshold, and the fair
    way to compare scorers. Each query is served its best-scored candidate."""
    best_of: dict[int, int] = {}
    for i, g in enumerate(c.group):
        if g not in best_of or scores[i] > scores[best_of[g]]:
            best_of[g] = i
    rows = sorted(((scores[i], c.y[i], c.kinds[g]) for g, i in best_of.items()), key=lambda r: -r[0])
    n_dup = max(c.kinds.count("duplicate_partner"), 1)
    n_nm = max(c.kinds.count("near_miss_partner"), 1)
    right = wrong = dup = nm = 0
    best = {"recall": 0.0, "threshold": 1.01, "precision": 1.0, "near_miss": 0.0, "semantic_precision": float("nan")}
    for k, (score, ok, kind) in enumerate(rows):
        right += ok
        wrong += not ok
        dup += bool(ok) and kind == "duplicate_partner"
        nm += kind == "near_miss_partner"
        if k + 1 < len(rows) and rows[k + 1][0] == score:
            continue
        precision = (c.n_exact + right) / (c.n_exact + right + wrong)
        if precision >= min_precision and nm / n_nm <= max_near_miss and dup / n_dup > best["recall"]:
            best = {"recall": round(dup / n_dup, 4), "threshold": round(float(score), 4),
                    "precision": round(precision, 4),
                    "near_miss": round(nm / n_nm, 4), "semantic_precision": round(right / (right + wrong), 4)}
    return best


def recall_at_precision(p: np.ndarray, y: np.ndarray, target: float) -> tuple[float, float]:
    """(recall, threshold) of the lowest cut between distinct scores with precision ≥ target."""
    o = np.argsort(-p, kind="stable")
    ps_, ys = p[o], y[o]
    tp = np.cumsum(ys)
    prec = tp / np.arange(1, len(ys) + 1)
    valid = np.r_[ps_[1:] != ps_[:-1], True]
    ok = np.where((prec >= target) & valid)[0]
    if len(ok) == 0:
        return 0.0, 1.01
    return float(tp[ok[-1]] / max(ys.sum(), 1)), float(ps_[ok[-1]])


def auc(p: np.ndarray, y: np.ndarray) -> float:
    o = np.argsort(p, kind="stable")
    ranks = np.empty(len(p))
    ranks[o] = np.arange(1, len(p) + 1)
    n1 = y.sum()
    n0 = len(y) - n1
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def metrics(p: np.ndarray, y: np.ndarray) -> dict:
    return {"auc": round(auc(p, y), 4),
            "recall_at_p98": round(recall_at_precision(p, y, 0.98)[0], 4),
            "recall_at_p95": round(recall_at_precision(p, y, 0.95)[0], 4),
            "n": int(len(y)), "positives": int(y.sum())}


def reliability(p: np.ndarray, y: np.ndarray, edges: Sequence[float] = (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
                ) -> dict:
    """Held-out calibration of p: per bin, mean p beside the share right; and the recalibration
    σ(a + b·logit p) fitted on the held-out labels (a = 0, b = 1: calibrated)."""
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (p >= lo) & ((p < hi) if hi < 1.0 else (p <= hi))
        if m.sum():
            bins.append({"p": [lo, hi], "n": int(m.sum()), "mean_p": round(float(p[m].mean()), 4),
                         "right": round(float(y[m].mean()), 4)})
    keep = p >= 0.3
    z = np.log(np.clip(p[keep], 1e-4, 1 - 1e-4) / (1 - np.clip(p[keep], 1e-4, 1 - 1e-4)))
    b, a = map_logistic(z[:, None], y[keep], np.array([1.0, 0.0]), 1.0, 50)
    q = 1.0 / (1.0 + np.exp(-(a + b * z)))
    return {"bins": bins, "recalibration_a": round(float(a), 4), "recalibration_b": round(float(b), 4),
            "recalibration_on": int(keep.sum()),
            # The online prior: the held-out check counts as PRIOR_LABELS labels of the user's own
            # (its Fisher information per label, times that many), not as the thousand-odd it
            # is: another user's traffic is not Quora's, and a few dozen of its labels must be
            # able to overrule it.
            "online_prior_strength": round(float(PRIOR_LABELS * np.mean(q * (1 - q))), 4),
            "online_min_labels": ONLINE_MIN_LABELS}


# ---------------------------------------------------------------------------- models


def folds_of(pair: np.ndarray) -> np.ndarray:
    """A fixed 2-fold split by pair (a pair's examples stay on one side)."""
    return np.array([int(hashlib.sha256(str(p).encode()).hexdigest(), 16) % 2 for p in pair])


def fit_lr(F: np.ndarray, y: np.ndarray, l2: float, provenance: dict | None = None) -> AcceptanceModel:
    return fit_logistic(F, y, l2=l2, gate=GATE, veto=VETO, provenance=provenance)


def pair_metrics(rows: Sequence[tuple[str, str, bool]], vectors: dict[str, np.ndarray],
                 models: dict[str, AcceptanceModel | None]) -> dict:
    """AUC and recall at precision ≥ 0.98 over the pairs themselves (question2 against its own
    question1, no other stored question: margin = cos), per model; None is the cosine."""
    from shammah_tui.pipeline.pair_features import pair_features

    cos = np.array([float(vectors[a] @ vectors[b]) for a, b, _ in rows])
    F = np.array([pair_features(b, a, c) for (a, b, _), c in zip(rows, cos)])
    y = np.array([float(d) for _, _, d in rows])
    out = {}
    for name, m in models.items():
        p = cos if m is None else m.p_many(F)
        out[name] = {"auc": round(auc(p, y), 4), "recall_at_p98": round(recall_at_precision(p, y, 0.98)[0], 4)}
    return out


def choose_l2(F: np.ndarray, y: np.ndarray, pair: np.ndarray) -> tuple[float, dict]:
    """2-fold CV over fit pairs: the L2 with the best mean recall at precision ≥ 0.98 on
    candidates, AUC as tie-break."""
    fold = folds_of(pair)
    scores = {}
    for l2 in L2_GRID:
        rs = []
        for k in (0, 1):
            m = fit_lr(F[fold != k], y[fold != k], l2)
            p = m.p_many(F[fold == k])
            rs.append((recall_at_precision(p, y[fold == k], 0.98)[0], auc(p, y[fold == k])))
        scores[l2] = tuple(np.mean(rs, axis=0))
    best = max(scores, key=lambda l2: scores[l2])
    return best, {str(k): {"recall_at_p98": round(v[0], 4), "auc": round(v[1], 4)} for k, v in scores.items()}


def paws_check(paws: Candidates, p: np.ndarray, hindsight: dict) -> dict:
    """The shipped p on the PAWS queries' candidates (never fitted on): AUC, and what the
    Quora stream's hindsight threshold would serve of them, with how many of those are wrong."""
    served = p >= hindsight["threshold"]
    return dict(metrics(p, paws.y), at_quora_threshold=hindsight["threshold"], served=int(served.sum()),
                served_wrong=int((served & (paws.y == 0)).sum()),
                vetoed_negatives=round(float((p[paws.y == 0] == 0).mean()), 4))


def subset(c: Candidates, keep: np.ndarray) -> Candidates:
    """The candidates of the queries whose rows ``keep`` marks (whole queries: keep is by pair)."""
    groups = np.unique(c.group[keep])
    renumber = {int(g): i for i, g in enumerate(groups)}
    return Candidates(c.F[keep], c.y[keep], c.pair[keep], np.array([renumber[int(g)] for g in c.group[keep]]),
                      [c.kinds[int(g)] for g in groups], c.n_exact * len(groups) // max(len(c.kinds), 1),
                      [t for t, k in zip(c.texts, keep) if k])


def fit_mlp(F: np.ndarray, y: np.ndarray, hidden: int, weight_decay: float, provenance: dict | None = None,
            epochs: int = 400, seed: int = 0) -> AcceptanceModel:
    """One tanh hidden layer over the LR's standardized inputs (vetoed rows left out, as for the
    LR), full-batch Adam on the logistic loss; returned as an `AcceptanceModel` with ``hidden``."""
    import torch

    base = fit_lr(F, y, 1.0)  # its standardization, gate and veto
    keep = ~(F[:, [FEATURE_NAMES.index(v) for v in VETO]] != 0).any(axis=1)
    x = torch.tensor(base._inputs(F[keep]), dtype=torch.float32)
    t = torch.tensor(y[keep], dtype=torch.float32)
    torch.manual_seed(seed)
    layer, out = torch.nn.Linear(x.shape[1], hidden), torch.nn.Linear(hidden, 1)
    params = list(layer.parameters()) + list(out.parameters())
    opt = torch.optim.Adam(params, lr=0.01, weight_decay=weight_decay)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out(torch.tanh(layer(x))).squeeze(1), t)
        loss.backward()
        opt.step()
    with torch.no_grad():
        w1, b1 = layer.weight.double().numpy().copy(), layer.bias.double().numpy().copy()
        w2, b2 = out.weight.double().numpy()[0].copy(), float(out.bias.double().numpy()[0])
    return AcceptanceModel(base.mean, base.scale, w2, b2, GATE, VETO, provenance=dict(provenance or {}),
                           hidden=(w1, b1))


MLP_GRID = ((16, 1e-3), (32, 1e-3), (32, 1e-4), (64, 1e-3))


def choose_model(fit: Candidates, l2: float) -> tuple[str, tuple[int, float] | None, dict]:
    """2-fold CV over fit pairs, by the best duplicate-partner recall of a fixed threshold at served
    precision ≥ 0.98 on each fold's own streams: the LR, or an MLP of the grid when it beats it."""
    fold = folds_of(fit.pair)
    parts = [(fold != k, subset(fit, fold == k)) for k in (0, 1)]
    scores: dict[str, float] = {}
    scores["lr"] = float(np.mean([hindsight_recall(held, fit_lr(fit.F[tr], fit.y[tr], l2).p_many(held.F))["recall"]
                                  for tr, held in parts]))
    for hidden, wd in MLP_GRID:
        scores[f"mlp-{hidden}-{wd}"] = float(np.mean([
            hindsight_recall(held, fit_mlp(fit.F[tr], fit.y[tr], hidden, wd).p_many(held.F))["recall"]
            for tr, held in parts]))
        print("cv", hidden, wd, scores, flush=True)
    best = max(scores, key=lambda k: scores[k])
    chosen = None if best == "lr" else (int(best.split("-")[1]), float(best.split("-")[2]))
    return best, chosen, {k: round(v, 4) for k, v in scores.items()}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default="/tmp/acceptance/emb_cache")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--compare", action="store_true", help="also the MLP and the embedding head (torch)")
    # The LR ships. Fitted on Quora and PAWS alike, the MLP the CV preferred reached a little more
    # on Quora in hindsight (0.281 against the LR's 0.259) but learned the fit data's quirks, not
    # paraphrase: it scored a question below its own light rewording, and reworded math problems
    # at a median p of 0.57 against the LR's 0.71.
    ap.add_argument("--model", choices=("lr", "auto"), default="lr",
                    help="lr: the logistic regression (shipped); auto: the MLP where the CV and the "
                         "held-out stream prefer it")
    args = ap.parse_args(argv)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    started = time.perf_counter()
    rows, origin = fit_rows()
    dev = ps.load_qqp(EVAL_CSV)
    cache = ps.EmbeddingCache(args.cache)
    vectors = cache([q for r in rows + dev for q in r[:2]])

    examples = Path(args.cache) / f"candidates-v{FEATURE_VERSION}.pkl"
    if examples.exists():  # the candidates are the slow part (~5 min): kept beside the embeddings
        fit, ev = pickle.loads(examples.read_bytes())
    else:
        fit = fit_candidates(rows, vectors)
        ev = collect_candidates(ps.build_qqp_stream(EVAL_CSV, seed=EVAL_SEED), vectors)
        examples.write_bytes(pickle.dumps((fit, ev)))
    print(f"fit candidates {len(fit.y)} ({int(fit.y.sum())} positive), held-out {len(ev.y)} "
          f"({int(ev.y.sum())} positive), {time.perf_counter() - started:.0f} s", flush=True)
    # The PAWS pairs play in the fit streams (they crowd the store as there) but their queries'
    # candidates are a held-out check, not fitted on: fitted on, they pull p down on every
    # near-identical pair (42% of their non-vetoed ones are positive, Quora's 82%) and lose on
    # both held-out measures (Quora in hindsight 0.259 against 0.267; reworded math problems at a
    # median p of 0.71 against 0.86). What they teach, word and name swaps, the vetoes say.
    from_paws = np.array([origin[int(i)] == "paws_qqp.csv" for i in fit.pair])
    fit, paws = subset(fit, ~from_paws), subset(fit, from_paws)
    l2, cv = choose_l2(fit.F, fit.y, fit.pair)
    digest = hashlib.sha256("\n".join(f"{a}\t{b}\t{int(d)}" for a, b, d in rows).encode()).hexdigest()[:16]
    n_paws = origin.count("paws_qqp.csv")
    provenance = {
        "name": f"acceptance-qqp-paws-features-v{FEATURE_VERSION}",
        "data": f"qqp_train.csv ({len(rows) - n_paws:,} Quora pairs) + paws_qqp.csv ({n_paws:,} PAWS-QQP pairs); "
                "no question in common with qqp_dev.csv",
        "fit_pairs_sha256": digest,
        "examples": f"top-{TOP_K} cosine candidates of every non-exact query of paraphrase streams over the fit "
                    f"pairs (shuffled by numpy.random.default_rng({FIT_SEED}) into streams of {CHUNK} pairs, "
                    f"stream seeds {FIT_SEED}..), label = same answer key; fitted on the {len(fit.y)} candidates "
                    f"of Quora queries ({int(fit.y.sum())} positive); the {len(paws.y)} of PAWS queries are "
                    "a held-out check (paws_check)",
        "eval": "qqp_dev.csv, all 3,000 pairs (never fitted on): the stream of bench/learning_streams.py",
        "fit_half": "none",
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (unit vectors)",
        "feature_version": FEATURE_VERSION,
        "cv": cv,
        "reproduce": "python bench/train_acceptance.py",
    }
    best, arch, cv_models = choose_model(fit, l2) if args.model == "auto" else ("lr", None, {})
    lr = fit_lr(fit.F, fit.y, l2)
    p_lr = lr.p_many(ev.F)
    gated = f" + cos-gated copies (gate {list(GATE)})" if GATE else ""
    inputs = f"standardized features{gated}, veto {list(VETO)}"
    provenance["model"] = f"logistic regression on {inputs}, L2 {l2} chosen by 2-fold CV over fit pairs"
    model = lr
    if arch is not None:
        # The MLP the CV prefers is kept only where it also beats the simpler LR on the held-out
        # stream: the fit streams mix PAWS pairs in, and what ranks them best need not rank
        # Quora's own paraphrases best.
        mlp = fit_mlp(fit.F, fit.y, *arch)
        p_mlp = mlp.p_many(ev.F)
        mlp_held = dict(metrics(p_mlp, ev.y), hindsight_stream=hindsight_recall(ev, p_mlp), units=arch[0],
                        weight_decay=arch[1])
        provenance["mlp_considered"] = mlp_held
        if mlp_held["hindsight_stream"]["recall"] > hindsight_recall(ev, p_lr)["recall"]:
            model = mlp
            provenance["model"] = (f"MLP, one tanh layer of {arch[0]} units (weight decay {arch[1]}, 400 full-batch "
                                   f"Adam steps, torch seed 0) on {inputs}; chosen over the LR (L2 {l2}) by 2-fold "
                                   "CV over fit pairs and by the held-out stream")
    provenance["cv_models"] = dict(cv_models, by="mean duplicate-partner recall of the best fixed threshold at "
                                   "served precision >= 0.98 on each fold's held-out streams")
    p_ev = model.p_many(ev.F)
    provenance["train_metric"] = metrics(model.p_many(fit.F), fit.y)
    provenance["heldout_metric"] = dict(
        metrics(p_ev, ev.y),
        cosine=metrics(ev.F[:, 0], ev.y),
        hindsight_stream=hindsight_recall(ev, p_ev),
        hindsight_stream_cosine=hindsight_recall(ev, ev.F[:, 0]),
        lr=dict(metrics(p_lr, ev.y), hindsight_stream=hindsight_recall(ev, p_lr)),
        pairs=pair_metrics(dev, vectors, {"cosine": None, "shipped": model, "lr": lr}),
        on=f"candidates of the qqp_dev.csv stream (seed {EVAL_SEED}), never fitted on; hindsight_stream = best "
           "duplicate-partner recall of a fixed threshold at served precision >= 0.98 and near-miss <= 2%")
    provenance["paws_check"] = paws_check(paws, model.p_many(paws.F), provenance["heldout_metric"]["hindsight_stream"])
    provenance["heldout_calibration"] = reliability(p_ev, ev.y)
    model.provenance = provenance
    model.save(args.out)
    print(f"wrote {args.out}: {provenance['model']}")
    print("train   ", provenance["train_metric"])
    print("held-out", provenance["heldout_metric"])
    print("calibration", provenance["heldout_calibration"])
    print("paws", provenance["paws_check"])
    if args.compare:
        compare(fit, ev, model, vectors)
    print(f"{time.perf_counter() - started:.1f} s")
    return 0


# ---------------------------------------------------------------------------- research: other models


def _torch_fit(x: np.ndarray, y: np.ndarray, hidden: int, weight_decay: float, epochs: int = 300, seed: int = 0):
    """A logistic model (hidden = 0) or a one-hidden-layer MLP, full batch, Adam; returns a scorer."""
    import torch

    torch.manual_seed(seed)
    X = torch.tensor(x, dtype=torch.float32)
    Y = torch.tensor(y, dtype=torch.float32)
    net = (torch.nn.Linear(x.shape[1], 1) if hidden == 0 else
           torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)))
    opt = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        opt.zero_grad()
        loss = loss_fn(net(X).squeeze(1), Y)
        loss.backward()
        opt.step()

    def score(xe: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return net(torch.tensor(xe, dtype=torch.float32)).squeeze(1).numpy().astype(np.float64)
    return score


def _pair_vectors(c: Candidates, vectors: dict[str, np.ndarray]) -> np.ndarray:
    u = np.stack([vectors[a] for a, _ in c.texts]).astype(np.float32)
    v = np.stack([vectors[b] for _, b in c.texts]).astype(np.float32)
    return np.hstack([np.abs(u - v), u * v])


def compare(fit: Candidates, ev: Candidates, model: AcceptanceModel, vectors: dict[str, np.ndarray]) -> None:
    """Research only: other model families on the same examples, scored on the held-out stream."""
    from shammah_tui.pipeline.pair_features import expand

    veto = ev.F[:, FEATURE_NAMES.index("number_mismatch")] != 0

    def show(name: str, p: np.ndarray) -> None:
        print(f"{name:40s} {metrics(p, ev.y)}  hindsight stream {hindsight_recall(ev, p)}", flush=True)

    show("cosine", ev.F[:, 0])
    show("shipped: " + model.provenance.get("model", "")[:30], model.p_many(ev.F))
    show("LR, gated + veto", fit_lr(fit.F, fit.y, 1.0).p_many(ev.F))
    for hidden, wd in MLP_GRID:
        show(f"MLP {hidden} tanh wd {wd} + veto", fit_mlp(fit.F, fit.y, hidden, wd).p_many(ev.F))
    hf, he = _pair_vectors(fit, vectors), _pair_vectors(ev, vectors)
    fold = folds_of(fit.pair)
    for wd in (1e-4, 1e-3):
        # the head's out-of-fold logit on the fit pairs, so the stacked LR never sees a fitted score
        oof = np.zeros(len(fit.y))
        for k in (0, 1):
            s = _torch_fit(hf[fold != k], fit.y[fold != k], 0, wd, epochs=300)
            oof[fold == k] = s(hf[fold == k])
        head = _torch_fit(hf, fit.y, 0, wd, epochs=300)
        h_ev = head(he)
        show(f"head |u-v|,u*v alone wd {wd}", h_ev)
        xs_f = np.hstack([expand(fit.F, GATE), oof[:, None]])
        xs_e = np.hstack([expand(ev.F, GATE), h_ev[:, None]])
        mu, sd = xs_f.mean(0), xs_f.std(0)
        sd[sd < 1e-9] = 1.0
        theta = map_logistic((xs_f - mu) / sd, fit.y, np.zeros(xs_f.shape[1] + 1), 10.0, 50)
        z = ((xs_e - mu) / sd) @ theta[:-1] + theta[-1]
        show(f"LR + head logit wd {wd} + veto", np.where(veto, -40.0, z))


if __name__ == "__main__":
    sys.exit(main())
