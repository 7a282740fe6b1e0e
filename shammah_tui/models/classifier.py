"""Small, fast text classifiers: the router and the validator.

Both are bags of token embeddings (mean-pooled, pads masked) plus a few numeric side
features, fed to a two-layer MLP that outputs one logit:

- router    query                -> p(a local answer is acceptable)
- validator (query, answer)      -> p(the answer agrees with the teacher)

A bag of embeddings is crude but cheap: one router decision (batch 1, ~20 tokens) costs a
handful of small ops, far below the 2 ms budget, and it learns from a few hundred labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from .tokenizer import TextTokenizer

# Numeric side features the caller supplies with each example, each caller-defined and in
# [0, 1] (e.g. query length bucket, store similarity, generator confidence). The counts are
# fixed here because they are part of the checkpointed input shape.
ROUTER_FEATURES = 4
VALIDATOR_FEATURES = 3


@dataclass
class ClassifierConfig:
    # Must equal the tokenizer's vocabulary size.
    vocab_size: int = 8000
    # 64-dim embeddings: 0.5M params at 8k vocab, enough for a bag-of-tokens signal.
    n_embd: int = 64
    # Number of side features (ROUTER_FEATURES or VALIDATOR_FEATURES).
    n_features: int = ROUTER_FEATURES
    # MLP hidden width.
    hidden: int = 64
    # True: input is (query, answer) (validator); False: the query alone (router).
    pair: bool = False

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.n_embd, self.hidden) < 1 or self.n_features < 0:
            raise ValueError(f"classifier config sizes must be positive: {self}")

    @classmethod
    def router(cls, vocab_size: int) -> ClassifierConfig:
        return cls(vocab_size=vocab_size, n_features=ROUTER_FEATURES, pair=False)

    @classmethod
    def validator(cls, vocab_size: int) -> ClassifierConfig:
        return cls(vocab_size=vocab_size, n_features=VALIDATOR_FEATURES, pair=True)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        """Build from a dict; unknown keys are ignored, missing keys take the defaults."""
        kw: dict[str, Any] = {}  # each value converted to its field's type below
        for f in fields(cls):
            if f.name in d:
                kw[f.name] = bool(d[f.name]) if f.name == "pair" else int(d[f.name])
        return cls(**kw)


class TextClassifier(nn.Module):
    """Mean-pooled token embeddings (+ side features) -> MLP -> one logit."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.config = cfg
        self.emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        n_text = 4 * cfg.n_embd if cfg.pair else cfg.n_embd  # [q, a, q*a, |q-a|] or [q]
        self.mlp = nn.Sequential(
            nn.Linear(n_text + cfg.n_features, cfg.hidden),
            nn.GELU(approximate="tanh"),
            nn.Linear(cfg.hidden, 1),
        )
        nn.init.normal_(self.emb.weight, mean=0.0, std=0.1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _pool(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean of the embeddings of the unmasked tokens: (B, T) -> (B, C); all-pad rows give 0."""
        m = mask.to(self.emb.weight.dtype)  # (B, T)
        w = m / m.sum(1, keepdim=True).clamp(min=1.0)  # (B, T), each row sums to 1 (or 0)
        # one fused gather-and-sum instead of embed, multiply, sum
        return F.embedding_bag(ids, self.emb.weight, per_sample_weights=w, mode="sum")  # (B, C)

    def forward(
        self,
        q_ids: torch.Tensor,
        q_mask: torch.Tensor,
        features: torch.Tensor | None,
        a_ids: torch.Tensor | None = None,
        a_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B,) and, given 0/1 ``labels`` (B,), the mean BCE-with-logits loss."""
        cfg = self.config
        x = self._pool(q_ids, q_mask)  # (B, C)
        if cfg.pair:
            if a_ids is None or a_mask is None:
                raise ValueError("a pair classifier needs a_ids and a_mask")
            a = self._pool(a_ids, a_mask)  # (B, C)
            x = torch.cat([x, a, x * a, (x - a).abs()], dim=1)  # (B, 4C)
        if cfg.n_features:
            if features is None or features.shape != (x.size(0), cfg.n_features):
                got = None if features is None else tuple(features.shape)
                raise ValueError(f"expected features of shape ({x.size(0)}, {cfg.n_features}), got {got}")
            x = torch.cat([x, features.to(x.dtype)], dim=1)  # (B, n_text + F)
        logits = self.mlp(x).squeeze(-1)  # (B,)
        if labels is None:
            return logits, None
        return logits, F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def collate_texts(tok: TextTokenizer, texts: Sequence[str], max_len: int,
                  device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (B, T) padded with pad_id and a bool mask (B, T), True on real tokens.

    Each text keeps its first ``max_len`` tokens (the kind of question shows at the start);
    T is the longest kept length, at least 1 (an empty text is all padding).
    """
    seqs = [ids[:max_len] for ids in tok.encode_batch([t[: max_len * 16] for t in texts])]
    T = max([1, *map(len, seqs)])
    # One tensor from nested lists: much cheaper than filling rows one by one (per-op overhead).
    ids = torch.tensor([s + [tok.pad_id] * (T - len(s)) for s in seqs], dtype=torch.long, device=device)
    mask = torch.tensor([[True] * len(s) + [False] * (T - len(s)) for s in seqs], dtype=torch.bool, device=device)
    return ids, mask
