"""The local generator: a small causal transformer with KV-cache decoding.

Reads top to bottom: config, attention (with its cache), block, run positions, model, prompt
format, fast decoding, generation. Shapes: B batch, T time, C n_embd, h heads, hd head dim,
V vocab size, L keys attended to (cached + new).

References: karpathy/nanoGPT ``model.py`` (the model, ``forward(idx, targets)``), karpathy/nanochat
``engine.py`` (a preallocated KV cache tested against the plain path), and docs/skills-study.md
(run positions and reversed integer answers: what lets the model compute on unseen numbers and
words rather than only recall answers).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from shammah_tui.models.decoding import KVCache, decoding_start
from .tokenizer import ASSISTANT_ID, OTHER, TextTokenizer

IGNORE_INDEX = -100  # targets with this value carry no loss (prompt positions)
ANSWER_RESERVE = 64  # tokens a prompt leaves free for the answer by default
RUN_MAX = 16  # a token's index in its run is clamped to 0..15; index 16 means "not in a run"
ORD_MAX, ORD_ANSWER, ORD_NONE = 3, 4, 5  # run ordinals: 0..3 the 1st..4th run of its class in the prompt
RUN_ORDS = 6  # rows of the ordinal table: 0..ORD_MAX, ORD_ANSWER, ORD_NONE


@dataclass
class GeneratorConfig:
    # Must equal the tokenizer's vocabulary size; the bundle sets it from the tokenizer.
    vocab_size: int = 8000
    # 128 wide x 2 layers is ~1.5M params at 8k vocab: a training step of 32x128 tokens takes
    # ~0.5 s on 2 CPU cores and 64 cached decode steps stay in the tens of milliseconds.
    n_embd: int = 128
    n_layer: int = 2
    # 4 heads of 32 dims; n_embd must be divisible by n_head.
    n_head: int = 4
    # Longest prompt + answer in tokens; prompts are cut to leave ANSWER_RESERVE free.
    block_size: int = 256
    # The model is meant to memorize teacher answers; dropout only slows that down.
    dropout: float = 0.0
    # Run-position embeddings (``run_positions`` below): each digit or letter token also knows
    # its place in its number or word. Held-out arithmetic went from near 0 to 0.86 with them
    # (docs/skills-study.md); they cost 40 x n_embd parameters. False: the plain model.
    run_positions: bool = True

    def __post_init__(self) -> None:
        if min(self.vocab_size, self.n_embd, self.n_layer, self.n_head) < 1:
            raise ValueError(f"generator config sizes must be positive: {self}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.block_size < 8:
            raise ValueError(f"block_size must be at least 8, got {self.block_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GeneratorConfig:
        """Build from a dict; unknown keys are ignored, missing keys take the defaults."""
        kw: dict[str, Any] = {}  # each value converted to its field's type below
        for f in fields(cls):
            if f.name in d:
                v = d[f.name]
                kw[f.name] = float(v) if f.name == "dropout" else bool(v) if f.name == "run_positions" else int(v)
        return cls(**kw)


# ----------------------------------------------------------------------------- attention


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.n_head, self.n_embd = cfg.n_head, cfg.n_embd
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, pos0: int = 0) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        hd = C // self.n_head
        q = q.view(B, T, self.n_head, hd).transpose(1, 2)  # (B, h, T, hd)
        k = k.view(B, T, self.n_head, hd).transpose(1, 2)
        v = v.view(B, T, self.n_head, hd).transpose(1, 2)
        if cache is not None:
            k, v = cache.update(k, v, pos0)  # (B, h, L, hd), L = pos0 + T
        L = k.size(2)
        mask, causal = None, False
        if T == L:
            causal = T > 1  # plain prefill: ordinary causal mask
        elif T > 1:
            # New queries sit at positions L-T..L-1 and may see every key up to their own position.
            mask = torch.ones(T, L, dtype=torch.bool, device=x.device).tril(diagonal=L - T)
        # A single new token (T == 1) attends to every cached key: no mask needed.
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=causal,
            dropout_p=self.dropout if self.training else 0.0,
        )  # (B, h, T, hd)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.proj(y)


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
            nn.GELU(approximate="tanh"),  # GPT-2's GELU; ~5x cheaper than erf on CPU
            nn.Linear(4 * cfg.n_embd, cfg.n_embd),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None, pos0: int = 0) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), cache, pos0))  # (B, T, C)
        return x + self.drop(self.mlp(self.ln2(x)))


# ----------------------------------------------------------------------------- run positions
# A run is a maximal stretch of single-digit tokens, or of single-letter tokens, all in the
# prompt or all in the answer (the tokenizer splits numbers and quoted words into such runs).
# Each token in a run gets its index from the left and from the right, and the run's ordinal:
# which number (or word) of the prompt it is. An answer is generated one token at a time, so its
# runs' ends are unknown: both indices are the index from the left. Integer answers are learned
# with their digits reversed (``internal_answer``), so answer digit k is place k: it carries the
# same index as the prompt digits of place k (their from-right index). Likewise answer letter k
# lines up with prompt letter k (upper-casing, from the left) or its mirror (reversing).


def run_positions(idx: torch.Tensor, token_class: torch.Tensor,
                  prompt_len: int | torch.Tensor | None = None) -> torch.Tensor:
    """(from_left, from_right, ordinal) of every token, stacked: (3, B, T) long.

    ``token_class`` (V,) holds each id's class (tokenizer.char_classes: 0 other, 1 digit,
    2 letter). ``prompt_len`` (an int, or (B,)) is where the answer starts; None: right after
    each row's first assistant token (the whole row when it has none). Outside runs the
    indices are RUN_MAX and the ordinal ORD_NONE.
    """
    B, T = idx.shape
    dev = idx.device
    cls = token_class[idx]  # (B, T)
    t = torch.arange(T, device=dev)  # (T,)
    if prompt_len is None:
        is_a = idx == ASSISTANT_ID  # (B, T)
        plen = torch.where(is_a.any(1), is_a.int().argmax(1) + 1, T)  # (B,)
    else:
        plen = torch.as_tensor(prompt_len, device=dev).expand(B)  # (B,)
    answer = t[None, :] >= plen[:, None]  # (B, T)
    inrun = cls != OTHER  # (B, T)
    # t continues the run of t-1: same class, same side of the prompt's end
    cont = torch.zeros_like(inrun)
    cont[:, 1:] = inrun[:, 1:] & (cls[:, 1:] == cls[:, :-1]) & (answer[:, 1:] == answer[:, :-1])
    start = inrun & ~cont
    end = inrun.clone()
    end[:, :-1] &= ~cont[:, 1:]
    start_pos = torch.where(start, t, 0).cummax(1).values  # (B, T): where t's run starts
    end_pos = torch.where(end, t, T).flip(1).cummin(1).values.flip(1)  # (B, T): where it ends
    left = (t - start_pos).clamp(max=RUN_MAX - 1)
    right = torch.where(answer, left, (end_pos - t).clamp(max=RUN_MAX - 1))
    # ordinal: how many runs of the same class the prompt has started up to here
    prompt_start = start & ~answer
    nth = torch.where(cls == 1, (prompt_start & (cls == 1)).cumsum(1),
                      (prompt_start & (cls != 1)).cumsum(1)) - 1  # (B, T)
    ords = torch.where(answer, ORD_ANSWER, nth.clamp(0, ORD_MAX))
    none = torch.full_like(left, RUN_MAX)
    return torch.stack([torch.where(inrun, left, none), torch.where(inrun, right, none),
                        torch.where(inrun, ords, torch.full_like(ords, ORD_NONE))])  # (3, B, T)


# ----------------------------------------------------------------------------- model


class Generator(nn.Module):
    """Token + position (+ run-position) embeddings, pre-LN blocks, final LN, tied LM head."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.block_size, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying: fewer params, better small-data fit
        if cfg.run_positions:
            self.wleft = nn.Embedding(RUN_MAX + 1, cfg.n_embd)  # index in its run from the left
            self.wright = nn.Embedding(RUN_MAX + 1, cfg.n_embd)  # ... from the right
            self.wrun = nn.Embedding(RUN_ORDS, cfg.n_embd)  # which run of the prompt, or the answer
        # Each token id's class (digit / letter / other): the tokenizer's, set by the bundle
        # (set_token_classes). Not saved: it belongs to the tokenizer the checkpoint records.
        self.token_class: torch.Tensor
        self.register_buffer("token_class", torch.zeros(cfg.vocab_size, dtype=torch.long), persistent=False)
        self.token_classes: list[int] = [OTHER] * cfg.vocab_size  # the same, for the decode loop
        self.apply(self._init_weights)
        if cfg.run_positions:
            with torch.no_grad():  # "not in a run" starts as no signal at all
                self.wleft.weight[RUN_MAX].zero_()
                self.wright.weight[RUN_MAX].zero_()
                self.wrun.weight[ORD_NONE].zero_()
        # GPT-2: scale the residual projections so the residual stream doesn't grow with depth.
        for name, p in self.named_parameters():
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Number of distinct parameters (the tied head counts once)."""
        return sum(p.numel() for p in self.parameters())

    def set_token_classes(self, classes: list[int]) -> None:
        """Each token id's class, from ``TextTokenizer.char_classes`` (one per vocabulary id)."""
        if len(classes) != self.config.vocab_size:
            raise ValueError(f"{len(classes)} token classes for a vocabulary of {self.config.vocab_size}")
        self.token_classes = [int(c) for c in classes]
        self.token_class.copy_(torch.tensor(self.token_classes, dtype=torch.long))

    def run_positions(self, idx: torch.Tensor, prompt_len: int | torch.Tensor | None = None) -> torch.Tensor:
        """(3, B, T) run positions of ``idx`` under this model's token classes (see run_positions)."""
        return run_positions(idx, self.token_class, prompt_len)

    def new_caches(self, batch: int = 1, max_len: int | None = None) -> list[KVCache]:
        """Empty per-layer KV caches for up to ``max_len`` positions (default block_size)."""
        cfg = self.config
        max_len = min(max_len or cfg.block_size, cfg.block_size)
        w = self.wte.weight
        return [KVCache(batch, cfg.n_head, max_len, cfg.n_embd // cfg.n_head, w.device, w.dtype)
                for _ in range(cfg.n_layer)]

    def hidden(
        self,
        idx: torch.Tensor,
        caches: list[KVCache] | None = None,
        pos0: int = 0,
        prompt_len: int | torch.Tensor | None = None,
        runs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The final hidden states (B, T, C) of ``idx`` (see ``forward`` for the arguments)."""
        B, T = idx.shape
        if pos0 + T > self.config.block_size:
            raise ValueError(f"sequence of {pos0 + T} tokens exceeds block_size {self.config.block_size}")
        x = self.wte(idx) + self.wpe.weight[pos0:pos0 + T]  # (B, T, C)
        if self.config.run_positions:
            if runs is None:
                if pos0:
                    raise ValueError("a forward from pos0 > 0 needs the run positions of its tokens "
                                     "(run_positions of the whole sequence, sliced)")
                runs = self.run_positions(idx, prompt_len)  # (3, B, T)
            x = x + self.wleft(runs[0]) + self.wright(runs[1]) + self.wrun(runs[2])  # (B, T, C)
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i], pos0)
        return self.ln_f(x)  # (B, T, C)

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        caches: list[KVCache] | None = None,
        pos0: int = 0,
        last_only: bool = False,
        prompt_len: int | torch.Tensor | None = None,
        runs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) — (B, 1, V) with ``last_only`` — and the mean loss over targets != -100.

        ``idx`` (B, T) holds the tokens at positions pos0..pos0+T-1; with ``caches`` the keys and
        values of earlier positions come from the cache and the new ones are stored in it.
        Run positions are computed from ``idx`` and ``prompt_len`` (where the answer starts; None:
        right after the assistant token), or given as ``runs`` (3, B, T), which a forward that
        starts at pos0 > 0 needs: its earlier tokens are not in ``idx``.
        """
        x = self.hidden(idx, caches, pos0, prompt_len, runs)  # (B, T, C)
        if targets is None:
            if last_only:
                x = x[:, -1:, :]  # (B, 1, C): all that decoding needs
            return self.lm_head(x), None
        logits = self.lm_head(x)  # (B, T, V)
        # Sum / count rather than reduction="mean": a batch with no supervised position gives 0, not NaN.
        loss_sum = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=IGNORE_INDEX, reduction="sum")
        n = (targets != IGNORE_INDEX).sum().clamp(min=1)
        return logits, loss_sum / n

    def answer_loss(self, idx: torch.Tensor, targets: torch.Tensor,
                    prompt_len: int | torch.Tensor | None = None) -> torch.Tensor:
        """``forward(idx, targets)[1]`` with the LM head run on the supervised positions only.

        The training step: an answer is a few tokens of a 20-40 token example, and the head
        (C x V) is the biggest matrix, so this skips most of its cost, forward and backward.
        """
        h = self.hidden(idx, prompt_len=prompt_len)  # (B, T, C)
        keep = targets != IGNORE_INDEX  # (B, T)
        logits = self.lm_head(h[keep])  # (N, V), N supervised positions
        loss_sum = F.cross_entropy(logits, targets[keep], reduction="sum")
        return loss_sum / keep.sum().clamp(min=1)


# ----------------------------------------------------------------------------- prompt format
#   prompt  = <|context|> context <|user|> query <|assistant|>
#   example = prompt internal_answer(answer) <|endoftext|>     (loss only on answer + eos)

_INTEGER = re.compile(r"-?[0-9]+")


def internal_answer(text: str) -> str:
    """An integer answer with its digits reversed, sign first ("-776" <-> "-677"); else ``text``.

    The form the generator learns and generates integers in: least significant digit first,
    the order in which a sum or product is worked out, carries included. Its own inverse:
    ``encode_example`` applies it to the teacher's answer, ``LocalModels.answer`` to the
    generated text. Only a text that is exactly an integer (``-?[0-9]+``) changes.
    """
    if _INTEGER.fullmatch(text):
        sign = "-" if text.startswith("-") else ""
        return sign + text[len(sign):][::-1]
    return text


def _keep_ends(ids: list[int], n: int) -> list[int]:
    """At most ``n`` ids: the head and the tail, dropping the middle of a long text."""
    if len(ids) <= n:
        return ids
    if n <= 0:
        return []
    head = (n + 1) // 2
    return ids[:head] + ids[len(ids) - (n - head):]


def encode_prompt(tok: TextTokenizer, query: str, context: str = "", *,
                  block_size: int = 256, reserve: int = ANSWER_RESERVE) -> list[int]:
    """``[context_id] + context + [user_id] + query + [assistant_id]``, fitted to the block.

    Context and query share ``block_size - reserve - 3`` tokens so an answer of ``reserve``
    tokens still fits. The query wins: context gets what the query leaves but at least a
    quarter of the budget when it has that much, and is cut from the left (the most recent
    turns stay). A too-long query keeps its beginning and its end (the question is usually
    at one of them) and loses its middle.
    """
    budget = max(block_size - reserve - 3, 2)
    # Cut characters first so a 1 MB paste is not encoded in full (a token is rarely > 16 chars).
    cap = budget * 16
    if len(query) > 2 * cap:
        query = query[:cap] + query[-cap:]
    if len(context) > cap:
        context = context[-cap:]
    q = tok.encode(query)
    c = tok.encode(context) if context else []
    q = _keep_ends(q, budget - min(len(c), budget // 4))
    room = budget - len(q)
    c = c[len(c) - room:] if len(c) > room else c
    return [tok.context_id, *c, tok.user_id, *q, tok.assistant_id]


def encode_example(tok: TextTokenizer, query: str, context: str, answer: str, *,
                   block_size: int = 256, reserve: int = ANSWER_RESERVE) -> tuple[list[int], list[int]]:
    """Input ids and next-token targets for one training example, both <= block_size long.

    ``targets[i]`` is the token that follows ``inputs[i]``; it is -100 where that token is
    still part of the prompt, so the loss covers exactly the answer tokens and the final eos.
    The answer is encoded in its internal form (``internal_answer``: an integer reversed).
    """
    prompt = encode_prompt(tok, query, context, block_size=block_size, reserve=reserve)
    ans = tok.encode(internal_answer(answer[: block_size * 16])) + [tok.eos_id]
    full = prompt + ans
    inputs = full[:-1]
    targets = [IGNORE_INDEX] * (len(prompt) - 1) + ans
    return inputs[:block_size], targets[:block_size]


# ----------------------------------------------------------------------------- fast decoding
# One new token at a time, batch 1: the cost is per-op overhead, not FLOPs. This path does the
# same maths as Block/Generator.forward with fewer, cheaper ops: matrices pre-transposed to
# (in, out) so each projection is a single ``x @ W`` (2-3x faster than F.linear's GEMV on CPU,
# and the 128 x V head is the biggest op of a step), no module calls, no masks.


class _DecodeWeights:
    """A snapshot of the weights laid out for ``_decode_step``; rebuilt when any parameter changes."""

    def __init__(self, model: Generator) -> None:
        def t(weight: torch.Tensor) -> torch.Tensor:
            return weight.detach().t().contiguous()  # (out, in) -> (in, out)

        self.layers: list[tuple[torch.Tensor, ...]] = []
        for b in model.blocks:
            assert isinstance(b, Block)  # nn.ModuleList types its items as Module
            fc, out = b.mlp[0], b.mlp[2]
            assert isinstance(fc, nn.Linear) and isinstance(out, nn.Linear)
            self.layers.append(
                (b.ln1.weight, b.ln1.bias, t(b.attn.qkv.weight), b.attn.qkv.bias,
                 t(b.attn.proj.weight), b.attn.proj.bias, b.ln2.weight, b.ln2.bias,
                 t(fc.weight), fc.bias, t(out.weight), out.bias))
        self.wte, self.wpe = model.wte.weight, model.wpe.weight
        self.ln_f = (model.ln_f.weight, model.ln_f.bias)
        self.head = t(model.lm_head.weight)  # (C, V)
        # A generated token's run embedding is one of RUN_MAX + 1: index k of an answer run
        # (from_left = from_right = k, ordinal ORD_ANSWER), or the last row, "not in a run".
        self.runs: torch.Tensor | None = None
        if model.config.run_positions:
            k = torch.arange(RUN_MAX + 1)
            ords = torch.full_like(k, ORD_ANSWER)
            ords[RUN_MAX] = ORD_NONE
            runs = model.wleft.weight[k] + model.wright.weight[k] + model.wrun.weight[ords]  # (RUN_MAX + 1, C)
            self.runs = runs.detach()

    @staticmethod
    def key(model: Generator) -> tuple | None:
        # Training steps and load_state_dict modify parameters in place, which bumps each
        # tensor's version counter; .to(device) changes its storage. Either makes a new key.
        try:
            return tuple((p.data_ptr(), p._version) for p in model.parameters())
        except RuntimeError:  # parameters made under inference_mode have no version counter
            return None

    @classmethod
    def of(cls, model: Generator) -> _DecodeWeights:
        key = cls.key(model)
        if key is None:
            return cls(model)  # can't tell whether the weights changed: never reuse a snapshot
        cached = model.__dict__.get("_decode_weights")
        if cached is None or cached[0] != key:
            cached = (key, cls(model))
            model.__dict__["_decode_weights"] = cached  # plain attribute: not a submodule or buffer
        return cached[1]


class AnswerRun:
    """The run index of each generated token, one token at a time (``run_positions`` in the answer)."""

    def __init__(self, classes: list[int]) -> None:
        self.classes, self.run_class, self.length = classes, OTHER, 0

    def push(self, tok: int) -> int:
        """The index of ``tok`` in its answer run (clamped to RUN_MAX - 1), RUN_MAX outside runs."""
        c = self.classes[tok]
        self.length = self.length + 1 if c != OTHER and c == self.run_class else int(c != OTHER)
        self.run_class = c
        return RUN_MAX if c == OTHER else min(self.length - 1, RUN_MAX - 1)


def _decode_step(w: _DecodeWeights, cfg: GeneratorConfig, caches: list[KVCache],
                 tok: int, pos: int, run: int = RUN_MAX) -> torch.Tensor:
    """Logits (V,) for token ``tok`` at position ``pos`` (index ``run`` in its answer run);
    its keys/values go into ``caches``."""
    C, h = cfg.n_embd, cfg.n_head
    x = torch.add(w.wte.select(0, tok), w.wpe.select(0, pos))  # (C,)
    if w.runs is not None:
        x = x + w.runs.select(0, run)
    x = x.view(1, C)  # (1, C)
    for (l1w, l1b, qkv_w, qkv_b, pr_w, pr_b, l2w, l2b, fc_w, fc_b, out_w, out_b), cache in zip(w.layers, caches):
        qkv = torch.addmm(qkv_b, F.layer_norm(x, (C,), l1w, l1b), qkv_w)  # (1, 3C)
        q, k, v = qkv.view(3, 1, h, 1, C // h).unbind(0)  # 3 x (1, h, 1, hd)
        # narrow() makes views without the indexing machinery a slice goes through (per token, it adds up)
        cache.k.narrow(2, pos, 1).copy_(k)
        cache.v.narrow(2, pos, 1).copy_(v)
        y = F.scaled_dot_product_attention(
            q, cache.k.narrow(2, 0, pos + 1), cache.v.narrow(2, 0, pos + 1))  # (1, h, 1, hd)
        x = x + torch.addmm(pr_b, y.view(1, C), pr_w)
        hid = F.gelu(torch.addmm(fc_b, F.layer_norm(x, (C,), l2w, l2b), fc_w), approximate="tanh")  # (1, 4C)
        x = x + torch.addmm(out_b, hid, out_w)
    x = F.layer_norm(x, (C,), *w.ln_f)
    return (x @ w.head).view(-1)  # (V,)


# ----------------------------------------------------------------------------- generation


@dataclass
class GenerationResult:
    token_ids: list[int]  # new tokens, eos excluded
    token_probs: list[float]  # p(chosen token) under softmax at temperature 1, one per token_ids
    # min of token_probs and, when generation stopped on eos, p(eos) too: the weakest link.
    confidence: float
    stopped_on_eos: bool


def _confidence(token_probs: list[float], eos_prob: float | None) -> float:
    """Confidence of an answer: the smallest probability among its chosen tokens (eos included).

    The minimum, not the geometric mean: an answer is wrong as soon as one token is a guess
    (a digit, a name), and the mean dilutes that one uncertain token among many easy ones;
    it is also independent of answer length. A memorized answer has every token, its eos
    included, near 1; a guess has at least one low one.
    """
    probs = token_probs + ([eos_prob] if eos_prob is not None else [])
    return min(probs) if probs else 0.0


@torch.inference_mode()
def generate(
    model: Generator,
    prompt_ids: list[int],
    max_new_tokens: int = 64,
    eos_id: int | None = 0,
    temperature: float = 0.0,
    seed: int | None = None,
    use_cache: bool = True,
) -> GenerationResult:
    """Continue ``prompt_ids`` until eos, ``max_new_tokens`` or a full block (prompt + new <= block_size).

    temperature 0 is greedy (argmax); above 0 it samples with a ``torch.Generator`` seeded with
    ``seed`` (a random seed when None). ``use_cache=False`` recomputes the whole sequence each
    step: the plain reference path, which must give the same tokens.
    """
    prompt, budget, g = decoding_start(prompt_ids, model.config.block_size, max_new_tokens, temperature, seed,
                                       model.wte.weight.device)

    was_training = model.training
    model.eval()  # no dropout while decoding; the caller's mode is restored below
    try:
        return _generate(model, prompt, budget, eos_id, temperature, g, use_cache)
    finally:
        model.train(was_training)


def _generate(model: Generator, prompt: list[int], budget: int, eos_id: int | None,
              temperature: float, g: torch.Generator | None, use_cache: bool) -> GenerationResult:
    cfg, device = model.config, model.wte.weight.device
    out: list[int] = []
    probs: list[float] = []
    eos_prob: float | None = None
    if budget == 0:
        return GenerationResult(out, probs, _confidence(probs, None), False)

    idx = torch.tensor([prompt], dtype=torch.long, device=device)  # (1, P)
    caches = model.new_caches(1, len(prompt) + budget) if use_cache else None
    fast = _DecodeWeights.of(model) if use_cache else None
    run = AnswerRun(model.token_classes)
    P = len(prompt)
    logits = model(idx, caches=caches, last_only=True, prompt_len=P)[0][0, -1]  # (V,), prefill fills the caches
    for step in range(budget):
        p_all = torch.softmax(logits.float(), dim=-1)  # (V,) at temperature 1
        if g is None:
            tok = int(torch.argmax(logits))
        else:
            tok = int(torch.multinomial(torch.softmax(logits.float() / temperature, dim=-1), 1, generator=g))
        p = float(p_all[tok])
        if tok == eos_id:
            eos_prob = p
            break
        out.append(tok)
        probs.append(p)
        if step == budget - 1:
            break  # limit reached: don't run the model for a token nobody will read
        if fast is not None and caches is not None:  # use_cache
            logits = _decode_step(fast, cfg, caches, tok, P + len(out) - 1, run.push(tok))
        else:
            idx = torch.tensor([prompt + out], dtype=torch.long, device=device)  # (1, P + n)
            logits = model(idx, last_only=True, prompt_len=P)[0][0, -1]
    return GenerationResult(out, probs, _confidence(probs, eos_prob), eos_prob is not None)
