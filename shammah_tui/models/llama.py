"""A pre-trained llama-architecture causal LM (SmolLM2-135M-Instruct shapes), in plain torch.

Reads top to bottom: config, RMSNorm, rotary embeddings, KV cache, grouped-query attention,
SwiGLU MLP, block, model, generation. Shapes: B batch, T time, C n_embd, h query heads,
g key/value heads, hd head dim, L keys attended to (cached + new), V vocab size, F ffn width.

The weights come from a GGUF file (gguf_convert.py); q/k rows are stored here in the
"rotate half" order (each head's first hd/2 dims pair with its last hd/2), which is the order
the model was trained in; gguf_convert undoes the pair-interleaved order llama.cpp files use.

References: karpathy/nanoGPT ``model.py`` (one file, a config dataclass, ``forward(idx,
targets) -> (logits, loss)``), karpathy/nanochat (a preallocated KV cache checked against the
plain path, seeded sampling), the RoFormer paper (rotary position embeddings), Shazeer 2020
"GLU variants" (SwiGLU), Ainslie et al. 2023 (grouped-query attention), Zhang & Sennrich 2019
(RMSNorm).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.nn import functional as F
from shammah_tui.models.decoding import KVCache, decoding_start


@dataclass
class LlamaConfig:
    # The defaults are SmolLM2-135M's; from_gguf reads the real values from the file's metadata.
    vocab_size: int = 49152
    n_embd: int = 576
    n_layer: int = 30
    # 9 query heads share 3 key/value heads (3 queries per kv head): a third of the KV cache.
    n_head: int = 9
    n_kv_head: int = 3
    # SwiGLU hidden width (gate and up projections are each C -> F).
    ffn_hidden: int = 1536
    # Longest sequence the rotary tables are built for (the model's trained context).
    block_size: int = 8192
    # A base of 1e5 rather than 1e4 stretches the slowest rotation over the long context.
    rope_base: float = 100000.0
    rms_eps: float = 1e-5

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.n_embd, self.n_layer, self.n_head, self.n_kv_head, self.ffn_hidden) < 1:
            raise ValueError(f"llama config sizes must be positive: {self}")
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ValueError(f"n_embd ({self.n_embd}) must split into {self.n_head} heads of even size")
        if self.n_head % self.n_kv_head:
            raise ValueError(f"n_head ({self.n_head}) must be a multiple of n_kv_head ({self.n_kv_head})")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LlamaConfig:
        """Build from a dict; unknown keys are ignored, missing keys take the defaults."""
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in d:
                kw[f.name] = float(d[f.name]) if f.name in ("rope_base", "rms_eps") else int(d[f.name])
        return cls(**kw)

    @classmethod
    def from_gguf(cls, meta: Mapping[str, Any]) -> LlamaConfig:
        """From a GGUF file's metadata, as a plain {key: value} dict (gguf_convert.read_metadata)."""
        arch = meta.get("general.architecture")
        if arch != "llama":
            raise ValueError(f"not a llama GGUF file (architecture {arch!r})")
        n_embd, n_head = int(meta["llama.embedding_length"]), int(meta["llama.attention.head_count"])
        rope_dims = int(meta.get("llama.rope.dimension_count", n_embd // n_head))
        if rope_dims != n_embd // n_head:
            raise ValueError(f"partial rotary embeddings ({rope_dims} of {n_embd // n_head} dims) are not supported")
        vocab = meta.get("llama.vocab_size")
        if vocab is None:
            vocab = len(meta["tokenizer.ggml.tokens"])
        return cls(
            vocab_size=int(vocab),
            n_embd=n_embd,
            n_layer=int(meta["llama.block_count"]),
            n_head=n_head,
            n_kv_head=int(meta.get("llama.attention.head_count_kv", n_head)),
            ffn_hidden=int(meta["llama.feed_forward_length"]),
            block_size=int(meta.get("llama.context_length", 2048)),
            rope_base=_from_float32(meta.get("llama.rope.freq_base", 10000.0)),
            rms_eps=_from_float32(meta.get("llama.attention.layer_norm_rms_epsilon", 1e-5)),
        )


def _from_float32(value: Any) -> float:
    """The shortest decimal that rounds to the same float32 (GGUF stores 1e-5 as 9.9999997e-06)."""
    return float(str(np.float32(value)))


# ----------------------------------------------------------------------------- building blocks


class RMSNorm(nn.Module):
    """x / rms(x) * weight, the statistics taken in float32 so bfloat16 weights lose nothing there."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return x32.type_as(x) * self.weight


def rope_tables(cfg: LlamaConfig, length: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each (length, hd): dims i and i + hd/2 rotate together by pos * base^(-2i/hd)."""
    hd = cfg.head_dim
    inv_freq = 1.0 / (cfg.rope_base ** (torch.arange(0, hd, 2, dtype=torch.float64, device=device) / hd))  # (hd/2,)
    angles = torch.outer(torch.arange(length, dtype=torch.float64, device=device), inv_freq)  # (length, hd/2)
    angles = torch.cat([angles, angles], dim=-1)  # (length, hd)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, heads, T, hd) by the angles of its positions; cos, sin are (T, hd)."""
    half = x.size(-1) // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)  # the pair partner of each dim, signed
    return (x * cos + rotated * sin).type_as(x)


class Attention(nn.Module):
    """Causal grouped-query self-attention with rotary positions; no biases."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.wq = nn.Linear(cfg.n_embd, cfg.n_head * cfg.head_dim, bias=False)
        self.wk = nn.Linear(cfg.n_embd, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.wv = nn.Linear(cfg.n_embd, cfg.n_kv_head * cfg.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_head * cfg.head_dim, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None, pos0: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        hd = self.head_dim
        q = self.wq(x).view(B, T, self.n_head, hd).transpose(1, 2)  # (B, h, T, hd)
        k = self.wk(x).view(B, T, self.n_kv_head, hd).transpose(1, 2)  # (B, g, T, hd)
        v = self.wv(x).view(B, T, self.n_kv_head, hd).transpose(1, 2)  # (B, g, T, hd)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(k, v, pos0)  # (B, g, L, hd), L = pos0 + T
        L = k.size(2)
        mask, causal = None, False
        if T == L:
            causal = T > 1  # plain prefill: the ordinary causal mask
        elif T > 1:
            # New queries sit at positions L-T..L-1 and may see every key up to their own position.
            mask = torch.ones(T, L, dtype=torch.bool, device=x.device).tril(diagonal=L - T)
        # A single new token (T == 1) attends to every cached key: no mask needed.
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal,
                                           enable_gqa=self.n_kv_head != self.n_head)  # (B, h, T, hd)
        return self.wo(y.transpose(1, 2).reshape(B, T, self.n_head * hd))  # (B, T, C)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.gate = nn.Linear(cfg.n_embd, cfg.ffn_hidden, bias=False)
        self.up = nn.Linear(cfg.n_embd, cfg.ffn_hidden, bias=False)
        self.down = nn.Linear(cfg.ffn_hidden, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))  # (B, T, F) inside, (B, T, C) out


class Block(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.n_embd, cfg.rms_eps)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.n_embd, cfg.rms_eps)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: KVCache | None = None, pos0: int = 0) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, cache, pos0)  # (B, T, C)
        return x + self.mlp(self.mlp_norm(x))


# ----------------------------------------------------------------------------- model


class Llama(nn.Module):
    """Token embeddings, pre-norm blocks, final RMSNorm, and the embedding matrix as the head."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.config = cfg
        # Pre-trained weights are loaded over these (gguf_convert), so the embedding starts at zeros:
        # a random init on the meta device, where loading builds the model, costs seconds of imports.
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd, _weight=torch.zeros(cfg.vocab_size, cfg.n_embd))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.n_embd, cfg.rms_eps)
        # The rotary tables grow on demand (rope_for): 8192 positions would be 4 MB nobody reads.
        self._rope: tuple[torch.Tensor, torch.Tensor] | None = None

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def rope_for(self, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin tables (>= end, hd) on the weights' device, built at the next power of two."""
        if end > self.config.block_size:
            raise ValueError(f"sequence of {end} tokens exceeds block_size {self.config.block_size}")
        device = self.wte.weight.device
        if self._rope is None or self._rope[0].size(0) < end or self._rope[0].device != device:
            length = min(self.config.block_size, max(256, 1 << (end - 1).bit_length()))
            # Normal tensors even when first built during generation (inference mode): a
            # training step may use the same tables afterwards.
            with torch.inference_mode(False):
                self._rope = rope_tables(self.config, length, device)
        return self._rope

    def new_caches(self, batch: int = 1, max_len: int | None = None) -> list[KVCache]:
        """Empty per-layer KV caches for up to ``max_len`` positions (default block_size)."""
        cfg = self.config
        max_len = min(max_len or cfg.block_size, cfg.block_size)
        w = self.norm.weight  # the activations' dtype, which stays float even when the Linears are int8
        return [KVCache(batch, cfg.n_kv_head, max_len, cfg.head_dim, w.device, w.dtype) for _ in range(cfg.n_layer)]

    def hidden(self, idx: torch.Tensor, caches: list[KVCache] | None = None, pos0: int = 0) -> torch.Tensor:
        """The final normed hidden states (B, T, C) of ``idx`` (B, T): everything but the head."""
        B, T = idx.shape
        cos, sin = self.rope_for(pos0 + T)
        cos, sin = cos[pos0:pos0 + T], sin[pos0:pos0 + T]  # (T, hd)
        x = self.wte(idx)  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, None if caches is None else caches[i], pos0)
        return self.norm(x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (..., V) in float32 of hidden states (..., C): the head is the embedding matrix."""
        return F.linear(h, self.wte.weight.type_as(h)).float()

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        caches: list[KVCache] | None = None,
        pos0: int = 0,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V), or (B, 1, V) with ``last_only``, and the mean cross-entropy against
        ``targets`` (B, T) when given (-100 marks positions without loss). With ``caches``, ``idx``
        holds positions pos0.. and its keys/values are appended to the caches."""
        x = self.hidden(idx, caches, pos0)  # (B, T, C)
        if targets is None and last_only:
            x = x[:, -1:]  # only the next token's logits are needed: skip T-1 rows of the big head
        logits = self.head(x)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100)
        return logits, loss


# ----------------------------------------------------------------------------- generation


@dataclass
class LlamaGeneration:
    token_ids: list[int]  # new tokens, the stop token excluded
    stop: str  # "eos", "length" (max_new_tokens or a full block) or "cancelled"
    token_probs: list[float]  # p of each chosen token under the model, the stop token included


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None,
                rng: torch.Generator | None) -> int:
    """A token id from logits (V,): argmax at temperature 0, else a draw from the top_k softmax."""
    if temperature <= 0 or rng is None:
        return int(torch.argmax(logits))
    logits = logits.float() / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return int(torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=rng))


@torch.inference_mode()
def generate(
    model: Llama,
    prompt_ids: Sequence[int],
    max_new_tokens: int = 128,
    stop_ids: Sequence[int] = (),
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int | None = None,
    on_token: Callable[[int], object] | None = None,
    cancel: threading.Event | None = None,
    use_cache: bool = True,
) -> LlamaGeneration:
    """Continue ``prompt_ids`` until a stop id, ``max_new_tokens``, a full block or ``cancel``.

    Each new token goes to ``on_token`` as soon as it is chosen (stop ids are not sent).
    temperature 0 is greedy; above 0 draws with a ``torch.Generator`` seeded with ``seed``.
    ``use_cache=False`` recomputes the whole sequence each step: the plain reference path.
    """
    device = model.wte.weight.device
    prompt, budget, rng = decoding_start(prompt_ids, model.config.block_size, max_new_tokens, temperature, seed,
                                         device)
    stops = {int(s) for s in stop_ids}
    out: list[int] = []
    probs: list[float] = []
    was_training = model.training
    model.eval()
    try:
        if budget == 0:
            return LlamaGeneration(out, "length", probs)
        if cancel is not None and cancel.is_set():
            return LlamaGeneration(out, "cancelled", probs)
        caches = model.new_caches(1, len(prompt) + budget) if use_cache else None
        idx = torch.tensor([prompt], dtype=torch.long, device=device)  # (1, P)
        logits = model(idx, caches=caches, last_only=True)[0][0, -1]  # (V,); the prefill fills the caches
        while True:
            tok = sample_next(logits, temperature, top_k, rng)
            probs.append(float(torch.softmax(logits.float(), dim=-1)[tok]))
            if tok in stops:
                return LlamaGeneration(out, "eos", probs)
            out.append(tok)
            if on_token is not None:
                on_token(tok)
            if len(out) == budget:
                return LlamaGeneration(out, "length", probs)
            if cancel is not None and cancel.is_set():
                return LlamaGeneration(out, "cancelled", probs)
            if caches is not None:
                step = torch.tensor([[tok]], dtype=torch.long, device=device)  # (1, 1)
                logits = model(step, caches=caches, pos0=len(prompt) + len(out) - 1)[0][0, -1]
            else:
                idx = torch.tensor([prompt + out], dtype=torch.long, device=device)  # (1, P + n)
                logits = model(idx, last_only=True)[0][0, -1]
    finally:
        model.train(was_training)
