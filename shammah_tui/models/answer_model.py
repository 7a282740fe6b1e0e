"""What the neural tier answers with and the trainer teaches: one interface, two models.

- ``ScratchLM``: the small generator trained from scratch on the project's own tokenizer
  (generator.py). It learns the curriculum's skills quickly and cheaply.
- ``PretrainedLM`` (pretrained.py): SmolLM2-135M-Instruct, frozen, with LoRA adapters that the
  teacher's answers train.

The trainer sees only this interface: examples encoded as (input ids, target ids), a loss on
the answer tokens, the parameters a run may change, and a recipe (learning rate, passes) that
suits the model. The pipeline sees only ``answer``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn as nn

from .generator import Generator, encode_example, encode_prompt, generate, internal_answer
from .tokenizer import TextTokenizer

Pair = tuple[list[int], list[int]]  # (input ids, target ids) of one encoded example


@dataclass
class NeuralAnswer:
    text: str  # what the user sees
    confidence: float  # min p(chosen token) over the answer, its stop token included
    token_count: int  # new tokens, the stop token excluded
    latency_ms: float  # encode + generate + decode
    stopped_on_eos: bool
    token_ids: list[int]  # as generated
    token_probs: list[float]
    program: str | None = None
    """The program the model wrote, when ``text`` is what it computes (programs.py)."""


class AnswerModel(Protocol):
    """A model that answers a query and learns from (query, answer) examples."""

    loss_name: str
    """The name its loss carries in run reports, charts and stats: "generator" or "adapter"."""
    pad_id: int
    recipe: Mapping[str, Any]
    """TrainConfig fields this model trains with instead of the settings' defaults."""

    def encode_example(self, query: str, context: str, answer: str) -> Pair: ...

    def answer_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over the positions of ``y`` (B, T) that are not -100."""
        ...

    def trainable_parameters(self) -> Iterable[nn.Parameter]: ...

    def set_training(self, on: bool) -> None: ...

    @property
    def device(self) -> torch.device: ...

    def answer(self, query: str, context: str = "", max_new_tokens: int = 64, temperature: float = 0.0,
               seed: int | None = None, use_cache: bool = True,
               on_token: Callable[[str], object] | None = None,
               cancel: threading.Event | None = None) -> NeuralAnswer: ...

    def describe(self) -> dict[str, Any]:
        """What it is, for stats and the bench: name, parameters (trainable ones too), source."""
        ...


class ScratchLM:
    """The from-scratch generator behind the AnswerModel interface."""

    loss_name = "generator"
    recipe: Mapping[str, Any] = {}

    def __init__(self, tokenizer: TextTokenizer, generator: Generator) -> None:
        self.tokenizer = tokenizer
        self.generator = generator
        self.pad_id = tokenizer.pad_id

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def encode_example(self, query: str, context: str, answer: str) -> Pair:
        return encode_example(self.tokenizer, query, context, answer, block_size=self.generator.config.block_size)

    def answer_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.generator.answer_loss(x, y)

    def trainable_parameters(self) -> Iterable[nn.Parameter]:
        return self.generator.parameters()

    def set_training(self, on: bool) -> None:
        self.generator.train(on)

    def answer(self, query: str, context: str = "", max_new_tokens: int = 64, temperature: float = 0.0,
               seed: int | None = None, use_cache: bool = True,
               on_token: Callable[[str], object] | None = None,
               cancel: threading.Event | None = None) -> NeuralAnswer:
        """An integer, generated with its digits reversed, is put back in order (``internal_answer``);
        the whole answer arrives at once (its digits come out last first), so ``on_token`` gets it
        in one piece."""
        t0 = time.perf_counter()
        tok, g = self.tokenizer, self.generator
        with torch.inference_mode():
            g.eval()
            prompt = encode_prompt(tok, query, context, block_size=g.config.block_size,
                                   reserve=max(1, max_new_tokens))
            res = generate(g, prompt, max_new_tokens, eos_id=tok.eos_id, temperature=temperature,
                           seed=seed, use_cache=use_cache)
        text = internal_answer(tok.decode(res.token_ids))
        if on_token is not None and text:
            on_token(text)
        return NeuralAnswer(text, res.confidence, len(res.token_ids), (time.perf_counter() - t0) * 1000.0,
                            res.stopped_on_eos, res.token_ids, res.token_probs)

    def describe(self) -> dict[str, Any]:
        n = self.generator.num_params()
        return {"name": "from-scratch generator", "params": n, "trainable_params": n}
