"""The key/value cache of one attention layer, shared by both generators' decode paths."""

from __future__ import annotations

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
