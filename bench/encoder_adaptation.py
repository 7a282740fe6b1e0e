"""Does adapting the sentence encoder to labelled pairs beat the frozen encoder on pairs it never saw?

    python bench/encoder_adaptation.py [--cache DIR] [--splits 3] [--json]

The learned tier compares a new question with the stored ones by the cosine of their
all-MiniLM-L6-v2 vectors. This bench fits a head over those vectors, as MeanCache adapts its
encoder, and compares the cosine it gives with the frozen encoder's, on held-out pairs only:

- a per-dimension scale (384 weights) and a low-rank residual ``x + x·U·V`` (rank 16), both
  starting at the identity, fitted with a logistic loss on ``s·(cos − t)`` and L2 on the head;
- on what a user's traffic would give (750 labelled pairs of the evaluation half of
  ../shared/data/qqp_dev.csv, the half the shipped acceptance weights were not fitted on), on
  the 1,500 public pairs of the other half, and on both;
- evaluated on the other 750 pairs of the evaluation half: ROC AUC of the cosine, and the recall
  of duplicates at precision ≥ 0.98 with the threshold chosen in hindsight (the same for each
  head, so the comparison is fair; the figure itself is optimistic). Each of ``--splits`` seeded
  splits of the evaluation half is one row; the table gives the mean and the range.

A head would be worth building into the app only if it beat the frozen encoder here.
Skipped with a message when the data or the encoder's weights are absent.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paraphrase_stream as ps  # noqa: E402

USER_PAIRS = 750
RANK = 16
STEPS = 400
Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]  # first vectors, second vectors, is_duplicate


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a duplicate pair scores above a non-duplicate one."""
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores)] = np.arange(1, len(scores) + 1)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def recall_at_precision(scores: np.ndarray, labels: np.ndarray, precision: float = 0.98) -> float:
    """Most duplicates served by one threshold while precision stays ≥ `precision` (hindsight)."""
    hits = np.cumsum(labels[np.argsort(-scores)])
    enough = hits / np.arange(1, len(scores) + 1) >= precision
    return float(hits[enough].max() / labels.sum()) if enough.any() else 0.0


def fit_head(pairs: Pairs, kind: str, l2: float, seed: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A head fitted on `pairs`; returns the adapted cosine of two batches of vectors."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    a, b = (torch.tensor(v) for v in pairs[:2])
    y = torch.tensor(pairs[2], dtype=torch.float32)
    if kind == "scale":
        weights = [torch.nn.Parameter(torch.zeros(a.shape[1]))]

        def head(x: torch.Tensor) -> torch.Tensor:
            return x * (1 + weights[0])
    else:
        weights = [torch.nn.Parameter(torch.randn(a.shape[1], RANK) * 0.01),
                   torch.nn.Parameter(torch.randn(RANK, a.shape[1]) * 0.01)]

        def head(x: torch.Tensor) -> torch.Tensor:
            return x + (x @ weights[0]) @ weights[1]

    def cosine(x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return (F.normalize(head(x), dim=-1) * F.normalize(head(z), dim=-1)).sum(-1)

    scale, shift = torch.nn.Parameter(torch.tensor(10.0)), torch.nn.Parameter(torch.tensor(0.8))
    optimizer = torch.optim.Adam([*weights, scale, shift], lr=1e-2)
    for _ in range(STEPS):
        loss = F.binary_cross_entropy_with_logits(scale * (cosine(a, b) - shift), y)
        loss = loss + l2 * sum((w ** 2).sum() for w in weights)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def adapted(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return cosine(torch.tensor(x), torch.tensor(z)).numpy()

    return adapted


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "shammah-bench-embeddings"),
                    help="where question vectors are kept between runs")
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not ps.QQP_CSV.exists():
        print(f"skipped: {ps.QQP_CSV} is missing (development data, outside the repo)", file=sys.stderr)
        return 0
    rows = ps.load_qqp(ps.QQP_CSV)
    cache = ps.EmbeddingCache(args.cache)
    try:
        vectors = cache([q for row in rows for q in row[:2]])
    except Exception as exc:  # no encoder weights on this machine
        print(f"skipped: no sentence encoder ({exc})", file=sys.stderr)
        return 0

    def pairs(indices: np.ndarray) -> Pairs:
        return (np.stack([vectors[rows[i][0]] for i in indices]), np.stack([vectors[rows[i][1]] for i in indices]),
                np.array([rows[i][2] for i in indices]))

    public, evaluation = ps.split_pairs(len(rows), 0)
    heads = [("scale", 1e-3), ("low-rank", 1e-3), ("low-rank", 1e-2)]
    results: dict[str, dict[str, list[float]]] = {}
    for split in range(args.splits):
        order = np.random.default_rng(split).permutation(evaluation)
        user, held_out = order[:USER_PAIRS], order[USER_PAIRS:]
        test = pairs(held_out)
        frozen = np.sum(test[0] * test[1], axis=1)
        results.setdefault("frozen encoder", {"auc": [], "recall": []})
        results["frozen encoder"]["auc"].append(roc_auc(frozen, test[2]))
        results["frozen encoder"]["recall"].append(recall_at_precision(frozen, test[2]))
        for data_name, indices in (("user 750", user), ("public 1,500", public),
                                   ("public + user", np.concatenate([public, user]))):
            fit = pairs(indices)
            for kind, l2 in heads:
                scores = fit_head(fit, kind, l2, seed=split)(test[0], test[1])
                row = results.setdefault(f"{kind} head (L2 {l2:g}) on {data_name}", {"auc": [], "recall": []})
                row["auc"].append(roc_auc(scores, test[2]))
                row["recall"].append(recall_at_precision(scores, test[2]))
    summary = {name: {f"{metric}_{stat}": float(fn(values)) for metric, values in r.items()
                      for stat, fn in (("mean", np.mean), ("min", np.min), ("max", np.max))}
               for name, r in results.items()}
    if args.json:
        print(json.dumps({"held_out_pairs": len(evaluation) - USER_PAIRS, "splits": args.splits,
                          "results": summary}))
        return 0
    print(f"held-out pairs: {len(evaluation) - USER_PAIRS} per split, {args.splits} splits "
          "(mean, [min–max]); recall at precision ≥ 0.98 with the threshold chosen in hindsight")
    for name, r in summary.items():
        print(f"{name:42} AUC {r['auc_mean']:.3f} [{r['auc_min']:.3f}–{r['auc_max']:.3f}]"
              f"   recall {r['recall_mean']:.3f} [{r['recall_min']:.3f}–{r['recall_max']:.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
