"""Does a cross-encoder fine-tuned on the public QQP pairs beat the frozen encoder's cosine?

    python bench/cross_encoder.py [--epochs 3] [--lr 3e-5] [--json]
    python bench/cross_encoder.py --train qqp_train --epochs 1 [--pairs N] [--json]

A cross-encoder reads both questions at once ([CLS] q1 [SEP] q2 [SEP], with segment ids) and
can weigh one word against the other, which a cosine of two vectors cannot. This bench starts
one from all-MiniLM-L6-v2 (the app's encoder; its weights from $HF_HOME), adds a linear head over
[CLS], the mean token and the two questions' mean vectors (|a−b|, a⊙b), and fine-tunes all of it
with a logistic loss on the 1,500 public pairs of ../shared/data/qqp_dev.csv (both orders; the
half the shipped acceptance weights are fitted on). It is scored on the other 1,500 pairs, never
trained on, beside the frozen encoder's cosine and the sum of the two (standardized):
ROC AUC and the share of duplicates found while 1 / 2 / 5 / 10 % of non-duplicates pass.
With --train qqp_train it is fitted instead on ../shared/data/qqp_train.csv (18,286 Quora pairs,
no question shared with qqp_dev.csv; each pair once, in a seeded random order; --pairs N takes a
seeded subset) and scored on all 3,000 pairs of qqp_dev.csv.

Measured (2-core CPU, 3 epochs, ~4.5 min): cosine AUC 0.885 (0.341 of duplicates at 2 % of
non-duplicates), cross-encoder 0.868 (0.237), the sum 0.893 (0.360). One epoch: 0.811. So 1,500
pairs are too few to teach a bi-encoder's weights to compare two questions better than its
cosine does. The sum's gain (+0.02 at 2 %) is about one standard error on 750 duplicates and
would cost a second 90 MB model, so the app keeps the cosine and the acceptance model over pair
features.

Measured with --train qqp_train (2-core CPU, one epoch, all 18,286 pairs, 8 min of training),
on the 3,000 pairs of qqp_dev.csv (1,500 duplicates):

    score             AUC    share of duplicates at 1 / 2 / 5 / 10 % of non-duplicates
    frozen cosine     0.888  0.176 / 0.270 / 0.471 / 0.601
    cross-encoder     0.914  0.175 / 0.338 / 0.556 / 0.706
    sum               0.918  0.256 / 0.381 / 0.552 / 0.719

A seeded subset of 12,000 pairs (one epoch, 5.3 min): cross-encoder 0.906 (0.304 at 2 %), sum
0.913 (0.339); 3,200 pairs: cross-encoder 0.840 (0.143), below the cosine. One standard error of
a share near 0.3 on 1,500 duplicates is about 0.012.
Skipped with a message when the data or the encoder's weights are absent.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paraphrase_stream as ps  # noqa: E402

BATCH = 16
FPRS = (0.01, 0.02, 0.05, 0.10)
QQP_TRAIN_CSV = ps.DATA / "qqp_train.csv"


def auc(p: np.ndarray, y: np.ndarray) -> float:
    ranks = np.empty(len(p))
    ranks[np.argsort(p)] = np.arange(1, len(p) + 1)
    n1 = y.sum()
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * (len(y) - n1)))


def tpr_at_fpr(p: np.ndarray, y: np.ndarray, fpr: float) -> float:
    negatives = np.sort(p[y == 0])[::-1]
    return float((p[y == 1] > negatives[int(fpr * len(negatives))]).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--train", choices=("dev-half", "qqp_train"), default="dev-half",
                    help="dev-half: fit on half of qqp_dev.csv (both orders), score the other half; "
                         "qqp_train: fit on qqp_train.csv (one random order per pair), score all of qqp_dev.csv")
    ap.add_argument("--pairs", type=int, default=0,
                    help="with --train qqp_train: a seeded random subset of this many pairs (0 = all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    for needed in (ps.QQP_CSV, *([QQP_TRAIN_CSV] if args.train == "qqp_train" else [])):
        if not Path(needed).exists():
            print(f"skipped: {needed} not found")
            return 0
    import torch
    import torch.nn as nn
    from tokenizers import Tokenizer
    from torch.nn import functional as F

    from shammah_tui.models.encoder import SentenceEncoder, locate_encoder

    folder = locate_encoder(None)
    if folder is None:
        print("skipped: no all-MiniLM-L6-v2 folder (run ../shared/tools/hf-minilm and export HF_HOME)")
        return 0
    torch.set_num_threads(2)
    torch.manual_seed(0)
    random.seed(0)
    rows = ps.load_qqp(ps.QQP_CSV)
    rng = np.random.default_rng(0)
    if args.train == "qqp_train":
        fit_rows = ps.load_qqp(QQP_TRAIN_CSV)
        if 0 < args.pairs < len(fit_rows):
            fit_rows = [fit_rows[i] for i in np.sort(rng.permutation(len(fit_rows))[:args.pairs])]
        eval_half = np.arange(len(rows))
        train = [(a, b, float(y)) if flip else (b, a, float(y))
                 for (a, b, y), flip in zip(fit_rows, rng.random(len(fit_rows)) < 0.5)]
        fitted_on = f"{len(fit_rows)} pairs of qqp_train.csv (one order each)"
    else:
        fit_half, eval_half = ps.split_pairs(len(rows), 0)
        train = [(rows[i][0], rows[i][1], float(rows[i][2])) for i in fit_half]
        train += [(b, a, y) for a, b, y in train]
        fitted_on = f"{len(fit_half)} public pairs (both orders)"
    frozen = SentenceEncoder.load(folder)
    bert = SentenceEncoder.load(folder).model.train()
    tok = Tokenizer.from_str((Path(folder) / "tokenizer.json").read_text(encoding="utf-8"))
    tok.no_padding()
    tok.enable_truncation(128)
    head = nn.Linear(4 * bert.config.n_embd, 1)

    def logits(pairs: list[tuple[str, str]]) -> torch.Tensor:
        encoded = tok.encode_batch([(a.lower(), b.lower()) for a, b in pairs])
        T = max(len(e.ids) for e in encoded)
        idx = torch.zeros(len(encoded), T, dtype=torch.long)  # (B, T)
        seg, mask = torch.zeros_like(idx), torch.zeros_like(idx)
        for i, e in enumerate(encoded):
            idx[i, :len(e.ids)], seg[i, :len(e.ids)], mask[i, :len(e.ids)] = \
                torch.tensor(e.ids), torch.tensor(e.type_ids), 1
        x = bert.ln_emb(bert.wte(idx) + bert.wpe.weight[:T] + bert.wtt(seg))  # (B, T, C)
        for block in bert.blocks:
            x = block(x, mask.bool()[:, None, None, :])
        m = mask.unsqueeze(-1).float()  # (B, T, 1)
        first, second = m * (seg.unsqueeze(-1) == 0), m * (seg.unsqueeze(-1) == 1)
        a = (x * first).sum(1) / first.sum(1).clamp(min=1)  # (B, C)
        b = (x * second).sum(1) / second.sum(1).clamp(min=1)
        return head(torch.cat([x[:, 0], (x * m).sum(1) / m.sum(1), (a - b).abs(), a * b], 1)).squeeze(-1)

    steps = args.epochs * math.ceil(len(train) / BATCH)
    opt = torch.optim.AdamW([*bert.parameters(), *head.parameters()], lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 50) * max(0.0, 1 - s / steps))
    started = time.perf_counter()
    for _ in range(args.epochs):
        order = rng.permutation(len(train))
        for start in range(0, len(order), BATCH):
            chunk = [train[i] for i in order[start:start + BATCH]]
            loss = F.binary_cross_entropy_with_logits(logits([(a, b) for a, b, _ in chunk]),
                                                      torch.tensor([y for *_, y in chunk]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    trained = time.perf_counter() - started
    bert.eval()
    test = [rows[i] for i in eval_half]
    with torch.no_grad():  # both orders, averaged: the verdict should not depend on which came first
        cross = np.concatenate([((logits([(a, b) for a, b, _ in test[s:s + 64]])
                                  + logits([(b, a) for a, b, _ in test[s:s + 64]])) / 2).numpy()
                                for s in range(0, len(test), 64)])
    y = np.array([float(dup) for *_, dup in test])
    u, v = frozen.embed([a for a, _, _ in test]), frozen.embed([b for _, b, _ in test])
    cosine = (u * v).sum(1)
    scores = {"frozen cosine": cosine, "cross-encoder": cross,
              "sum (standardized)": cross / cross.std() + cosine / cosine.std()}
    result = {name: {"auc": round(auc(p, y), 3), **{f"tpr_at_fpr_{f:g}": round(tpr_at_fpr(p, y, f), 3)
                                                   for f in FPRS}} for name, p in scores.items()}
    result["train_seconds"] = round(trained, 1)
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"cross-encoder from all-MiniLM-L6-v2, {args.epochs} epochs on {fitted_on}; "
              f"scored on {len(eval_half)} held-out pairs of qqp_dev.csv "
              f"({result['train_seconds']} s training, {result['seconds']} s in all)")
        for name in scores:
            print(f"  {name:20s} " + "  ".join(f"{k} {v}" for k, v in result[name].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
