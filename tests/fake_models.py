"""A stand-in for the local models: a generator that always says one thing, for the tier tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass
class _Generated:
    text: str
    confidence: float
    program: str | None = None


class _Tokenizer:
    def encode(self, text: str) -> list[int]:
        return list(range(len(text.split())))


class FakeModels:
    """A generator that always says `text`; `answering` lets a test hold it mid-decision."""

    def __init__(self, text: str, *, p: float = 0.9, confidence: float = 0.9) -> None:
        self.text, self.p, self.confidence = text, p, confidence
        self.tokenizer = _Tokenizer()
        self.started = threading.Event()
        self.resume = threading.Event()
        self.resume.set()

    def router_p(self, queries: list[str], features: list[list[float]]) -> list[float]:
        return [0.9 for _ in queries]

    def answer(self, query: str, context: str = "", max_new_tokens: int = 64, cancel=None) -> _Generated:
        self.started.set()
        assert self.resume.wait(10)
        return _Generated(self.text, self.confidence)

    def validator_p(self, queries: list[str], answers: list[str], features: list[list[float]]) -> list[float]:
        return [self.p for _ in queries]
