"""The semantic store: the teacher's answers found by what a question means, not how it is spelled.

Every stored question is embedded by a sentence encoder; a new query's nearest stored questions
in the same context are candidates, and the acceptance model (`pair_features`) gives each one
p(its stored answer is right for the new query). The learned tier serves the best candidate when
p clears a threshold calibrated online so that the estimated error of served answers stays
under δ (`pipeline/calibration.py`): the labels come for free, from forwards (the teacher's new
answer compared with the nearest stored one) and spot checks.

numpy only: the encoder (torch) is handed in once it has loaded, behind the `Embedder` protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

import numpy as np

from shammah_tui.pipeline.agreement import agreement
from shammah_tui.pipeline.pair_features import AcceptanceModel, pair_features
from shammah_tui.pipeline.vectors import VectorIndex
from shammah_tui.core.records import LearnedAnswer

#: Nearest stored questions judged for each query.
CANDIDATES = 3


class Embedder(Protocol):
    """A sentence encoder: texts to unit vectors (`models/encoder.SentenceEncoder`)."""

    name: str
    dim: int
    fingerprint: str

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...


@dataclass(frozen=True)
class SemanticCandidate:
    """The best stored question for a query, and how sure the acceptance model is of its answer."""

    entry: LearnedAnswer
    cosine: float
    p: float
    features: tuple[float, ...]


def to_blob(vector: np.ndarray) -> bytes:
    """A vector as the store keeps it (float32 bytes)."""
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32)


class SemanticStore:
    """The stored questions' vectors by context, the encoder, and the acceptance model."""

    def __init__(self, acceptance: AcceptanceModel, candidates: int = CANDIDATES) -> None:
        self.acceptance = acceptance
        self.candidates = candidates
        self.encoder: Embedder | None = None
        self._index: VectorIndex | None = None
        self._entries: dict[int, LearnedAnswer] = {}
        self._lock = threading.Lock()

    @property
    def ready(self) -> bool:
        return self.encoder is not None and self._index is not None

    def __len__(self) -> int:
        return len(self._index) if self._index is not None else 0

    def attach(self, encoder: Embedder, stored: Iterable[tuple[LearnedAnswer, np.ndarray]]) -> None:
        """Start searching with `encoder` over the stored questions it embedded."""
        index = VectorIndex(encoder.dim)
        entries: dict[int, LearnedAnswer] = {}
        for entry, vector in stored:
            index.replace(entry.id, entry.context_key, vector)
            entries[entry.id] = entry
        with self._lock:
            self.encoder, self._index, self._entries = encoder, index, entries

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of `texts` (n, dim); the encoder must be attached."""
        assert self.encoder is not None
        return self.encoder.embed(list(texts))

    def add(self, entry: LearnedAnswer, vector: np.ndarray) -> None:
        """Store (or replace) the vector of a stored question."""
        with self._lock:
            if self._index is None:
                return
            self._index.replace(entry.id, entry.context_key, vector)
            self._entries[entry.id] = entry

    def has(self, learned_id: int) -> bool:
        return learned_id in self._entries

    def best(self, query: str, vector: np.ndarray, context_key: str,
             exclude_id: int | None = None) -> SemanticCandidate | None:
        """The candidate with the highest p among the nearest stored questions (None: none stored)."""
        with self._lock:
            if self._index is None:
                return None
            found = self._index.search(vector, context_key, self.candidates + 1)
            hits = [(self._entries[cast(int, i)], cos) for i, cos in found if i != exclude_id][: self.candidates]
        if not hits:
            return None
        rows = []
        for i, (entry, cos) in enumerate(hits):
            # Only a neighbour that answers otherwise makes the query ambiguous: two stored
            # wordings of one question, answered alike, are one candidate seen twice.
            others = [c for j, (other, c) in enumerate(hits)
                      if j != i and not agreement(other.answer, entry.answer).agrees]
            rows.append(pair_features(query, entry.query, cos, other_cosine=max(others) if others else None))
        features = np.stack(rows)
        ps = self.acceptance.p_many(features)
        k = int(np.argmax(ps))
        entry, cos = hits[k]
        return SemanticCandidate(entry, float(cos), float(ps[k]), tuple(float(x) for x in features[k]))

    def score(self, features: Sequence[Sequence[float]]) -> list[float]:
        """p of labelled pairs under the current acceptance model (for calibration)."""
        if not features:
            return []
        return [float(p) for p in self.acceptance.p_many(np.asarray(features, dtype=np.float64))]
