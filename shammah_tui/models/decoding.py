"""What both generators' decode paths share: the key/value cache of one attention layer, and the
checks and sampler a generation starts with."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class KVCache:
    """Preallocated keys and values of one attention layer, each (B, h, max_len, hd): h key/value heads."""

    def __init__(self, batch: int, n_head: int, max_len: int, head_dim: int,
                 device: torch.device, dtype: torch.dtype) -> None:
        self.k = torch.zeros(batch, n_head, max_len, head_dim, device=device, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.max_len = max_len

    def update(self, k: torch.Tensor, v: torch.Tensor, pos0: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, h, T, hd) at positions pos0.. and return all keys/values so far."""
        end = pos0 + k.size(2)
        if end > self.max_len:
            raise ValueError(f"KV cache holds {self.max_len} positions, asked for {end}")
        self.k[:, :, pos0:end] = k
        self.v[:, :, pos0:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]  # (B, h, L, hd)


def decoding_start(prompt_ids: Sequence[int], block_size: int, max_new_tokens: int, temperature: float,
                   seed: int | None, device: torch.device) -> tuple[list[int], int, torch.Generator | None]:
    """The prompt as ints, how many tokens may follow it in the block, and the sampler's generator
    (None: greedy; seeded with `seed`, or at random when it is None)."""
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise ValueError("generate needs at least one prompt token")
    if len(prompt) > block_size:
        raise ValueError(f"prompt of {len(prompt)} tokens exceeds block_size {block_size}")
    budget = max(0, min(max_new_tokens, block_size - len(prompt)))
    if temperature <= 0:
        return prompt, budget, None
    rng = torch.Generator(device=device)
    if seed is None:
        rng.seed()
    else:
        rng.manual_seed(seed)
    return prompt, budget, rng
