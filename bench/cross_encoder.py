"""Does a cross-encoder fine-tuned on the public QQP pairs beat the frozen encoder's cosine?

    python bench/cross_encoder.py [--epochs 3] [--lr 3e-5] [--json]

A cross-encoder reads both questions at once ([CLS] q1 [SEP] q2 [SEP], with segment ids) and
can weigh one word against the other, which a cosine of two vectors cannot. This bench starts
one from all-MiniLM-L6-v2 (the app's encoder; its weights from $HF_HOME), adds a linear head over
[CLS], the mean token and the two questions' mean vectors (|a−b|, a⊙b), and fine-tunes all of it
with a logistic loss on the 1,500 public pairs of ../shared/data/qqp_dev.csv (both orders; the
half the shipped acceptance weights are fitted on). It is scored on the other 1,500 pairs, never
trained on, beside the frozen encoder's cosine and the sum of the two (standardized):
ROC AUC and the share of duplicates found while 1 / 2 / 5 / 10 % of non-duplicates pass.

Measured (2-core CPU, 3 epochs, ~4.5 min): cosine AUC 0.885 (0.341 of duplicates at 2 % of
non-duplicates), cross-encoder 0.868 (0.237), the sum 0.893 (0.360). One epoch: 0.811. So 1,500
pairs are too few to teach a bi-encoder's weights to compare two questions better than its
cosine does. The sum's gain (+0.02 at 2 %) is about one standard error on 750 duplicates and
would cost a second 90 MB model, so the app keeps the cosine and the acceptance model over pair
features.
Skipped with a message when the data or the encoder's weights are absent.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paraphrase_stream as ps  # noqa: E402

BATCH = 16
FPRS = (0.01, 0.02, 0.05, 0.10)


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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not Path(ps.QQP_CSV).exists():
        print(f"skipped: {ps.QQP_CSV} not found")
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
    torch.manual_seed(0)
    rows = ps.load_qqp(ps.QQP_CSV)
    fit_half, eval_half = ps.split_pairs(len(rows), 0)
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

    train = [(rows[i][0], rows[i][1], float(rows[i][2])) for i in fit_half]
    train += [(b, a, y) for a, b, y in train]
    steps = args.epochs * math.ceil(len(train) / BATCH)
    opt = torch.optim.AdamW([*bert.parameters(), *head.parameters()], lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / 50) * max(0.0, 1 - s / steps))
    rng = np.random.default_rng(0)
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
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"cross-encoder from all-MiniLM-L6-v2, {args.epochs} epochs on {len(fit_half)} public pairs; "
              f"scored on {len(eval_half)} held-out pairs ({result['seconds']} s)")
        for name in scores:
            print(f"  {name:20s} " + "  ".join(f"{k} {v}" for k, v in result[name].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
