"""The semantic store's margin feature: only a neighbour holding another answer is a rival."""

from __future__ import annotations

import numpy as np
import pytest

from shammah_tui.core.records import LearnedAnswer
from shammah_tui.pipeline.pair_features import FEATURE_NAMES, AcceptanceModel
from shammah_tui.pipeline.semantic import SemanticStore

MARGIN = FEATURE_NAMES.index("margin")


class AxisEncoder:
    """Texts to fixed unit vectors, so cosines are chosen by the test."""

    name = "axes"
    dim = 3
    fingerprint = "axes"

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def embed(self, texts, batch_size: int = 32) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def entry(id: int, query: str, answer: str) -> LearnedAnswer:
    return LearnedAnswer(id=id, norm_query=query.lower(), context_key="", query=query, answer=answer, origin="teacher")


def store_of(entries: list[tuple[LearnedAnswer, np.ndarray]]) -> SemanticStore:
    store = SemanticStore(AcceptanceModel.load())
    store.attach(AxisEncoder({}), entries)
    return store


QUERY = "How many apples does Tom have left if he buys 12 and eats 5?"
NEAR = unit(1.0, 0.05, 0.0)
SAME = unit(1.0, 0.0, 0.0)


def best_margin(entries) -> tuple[float, float, float]:
    """(margin, cosine) of the chosen candidate, and the cosine of the one not chosen."""
    candidate = store_of(entries).best(QUERY, NEAR, "")
    assert candidate is not None
    other = next(vector for e, vector in entries if e.id != candidate.entry.id)
    return candidate.features[MARGIN], candidate.cosine, float(NEAR @ other)


def test_a_second_wording_answered_alike_is_no_rival():
    margin, cos, _ = best_margin([
        (entry(1, "How many apples does Tom have left if he buys 12 and eats 5?", "The answer is 7."), SAME),
        (entry(2, "How many apples does Tom have left if he purchases 12 and eats 5?", "7"), unit(1.0, 0.001, 0.0)),
    ])
    assert margin == pytest.approx(cos)  # as if the other wording were not stored


def test_a_neighbour_answering_otherwise_narrows_the_margin():
    rival = unit(1.0, 0.1, 0.0)
    margin, cos, other = best_margin([
        (entry(1, "How many apples does Tom have left if he buys 12 and eats 5?", "He has 7 apples left."), SAME),
        (entry(2, "How many pears does Tom have left if he buys 12 and eats 5?", "He has 9 pears left."), rival),
    ])
    assert margin == pytest.approx(cos - other, abs=1e-6)
    assert margin < 0.05
