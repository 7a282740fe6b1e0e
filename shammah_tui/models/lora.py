"""Low-rank adapters (LoRA, Hu et al. 2021) over a frozen model's linear layers.

y = base(x) + (x A^T) B^T * alpha / r, with A (r, in) and B (out, r). B starts at zero, so a
fresh adapter leaves the model exactly as it was; only A and B train, in float32, while the base
weights stay frozen in whatever type they were loaded in (bfloat16 by default). The adapter is
the only thing a run changes, so it is the only thing saved: a few hundred kB beside the
checkpoints, reset by zeroing B.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class LoRAConfig:
    rank: int = 8
    alpha: float = 16.0
    #: Which projections of each block get an adapter (attention: wq wk wv wo; MLP: gate up down).
    targets: tuple[str, ...] = ("wq", "wk", "wv", "wo", "gate", "up", "down")
    #: Adapters on the top this many blocks (0: all). The backward pass stops at the lowest adapted
    #: block, so fewer blocks train faster.
    top_layers: int = 0

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or self.top_layers < 0 or not self.targets:
            raise ValueError(f"invalid LoRA config: {self}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["targets"] = list(self.targets)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LoRAConfig:
        return cls(rank=int(d["rank"]), alpha=float(d["alpha"]), targets=tuple(d["targets"]),
                   top_layers=int(d.get("top_layers", 0)))


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, generator: torch.Generator) -> None:
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.scale = alpha / rank
        device = base.weight.device
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=device))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=device))
        self.reset(generator)

    def reset(self, generator: torch.Generator) -> None:
        """A fresh adapter: A drawn like an nn.Linear's weight, B zero (the update is 0)."""
        bound = 1.0 / math.sqrt(self.base.in_features)
        with torch.no_grad():
            self.lora_a.copy_(torch.rand(self.lora_a.shape, generator=generator) * 2 * bound - bound)
            self.lora_b.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)  # (B, T, out), in the base's dtype
        update = (x.float() @ self.lora_a.t()) @ self.lora_b.t()  # (B, T, r) -> (B, T, out), float32
        return y + (update * self.scale).type_as(y)


def add_lora(blocks: Sequence[nn.Module], cfg: LoRAConfig, seed: int) -> list[LoRALinear]:
    """Wrap the ``cfg.targets`` linears of the (top ``cfg.top_layers``) blocks; returns the adapters
    in a fixed order (block by block, targets in order). Every base parameter is frozen."""
    for block in blocks:
        for p in block.parameters():
            p.requires_grad_(False)
    chosen = list(blocks)[-cfg.top_layers:] if cfg.top_layers else list(blocks)
    rng = torch.Generator().manual_seed(seed)
    adapters: list[LoRALinear] = []
    for block in chosen:
        for parent in block.children():
            for name in cfg.targets:
                layer = getattr(parent, name, None)
                if isinstance(layer, nn.Linear):
                    adapter = LoRALinear(layer, cfg.rank, cfg.alpha, rng)
                    setattr(parent, name, adapter)
                    adapters.append(adapter)
    if not adapters:
        raise ValueError(f"no linear layer named {cfg.targets} in the blocks")
    return adapters


def adapter_parameters(adapters: Sequence[LoRALinear]) -> Iterator[nn.Parameter]:
    for a in adapters:
        yield a.lora_a
        yield a.lora_b


def adapter_state(adapters: Sequence[LoRALinear]) -> dict[str, torch.Tensor]:
    """The adapters' weights by position: ``{i}.a`` and ``{i}.b``."""
    state: dict[str, torch.Tensor] = {}
    for i, a in enumerate(adapters):
        state[f"{i}.a"] = a.lora_a.detach().cpu().contiguous()
        state[f"{i}.b"] = a.lora_b.detach().cpu().contiguous()
    return state


def load_adapter_state(adapters: Sequence[LoRALinear], state: dict[str, torch.Tensor]) -> None:
    """Copy saved weights in; raises ValueError when they do not fit these adapters."""
    if set(state) != {f"{i}.{ab}" for i in range(len(adapters)) for ab in "ab"}:
        raise ValueError(f"the saved adapter has {len(state) // 2} layers, this model {len(adapters)}")
    for i, a in enumerate(adapters):
        for ab, param in (("a", a.lora_a), ("b", a.lora_b)):
            if tuple(state[f"{i}.{ab}"].shape) != tuple(param.shape):
                raise ValueError(f"adapter {i}.{ab} has shape {tuple(state[f'{i}.{ab}'].shape)}, "
                                 f"expected {tuple(param.shape)}")
    with torch.no_grad():
        for i, a in enumerate(adapters):
            a.lora_a.copy_(state[f"{i}.a"])
            a.lora_b.copy_(state[f"{i}.b"])
