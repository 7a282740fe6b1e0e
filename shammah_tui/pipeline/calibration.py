"""Thresholds chosen so that the estimated error of local answers stays under δ.

The estimate for a set of accepted answers with `e` disagreements out of `n` is
the Laplace-smoothed rate (e + 1) / (n + 2): it is never zero on little data, so a
threshold is only opened once enough labelled answers back it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: A threshold above every probability: the tier stays closed.
CLOSED = 1.01


def smoothed_error(errors: int, n: int) -> float:
    """Laplace-smoothed error rate of n answers with `errors` wrong."""
    return (errors + 1) / (n + 2)


@dataclass(frozen=True)
class Calibration:
    """A chosen threshold and what backs it."""

    threshold: float
    accepted: int
    errors: int
    estimated_error: float


def calibrate(scores: Sequence[float], correct: Sequence[bool], bound: float) -> Calibration:
    """The lowest threshold whose accepted set has smoothed error ≤ bound.

    Scores are tried from the highest down, so the accepted set grows; the last
    point where the estimate is still within the bound wins. No such point →
    CLOSED (nothing is accepted).
    """
    pairs = sorted(zip(scores, correct), key=lambda p: -p[0])
    best = Calibration(CLOSED, 0, 0, 1.0)
    errors = 0
    for n, (score, ok) in enumerate(pairs, start=1):
        errors += 0 if ok else 1
        # Only cut between distinct scores: equal scores are accepted or refused together.
        if n < len(pairs) and pairs[n][0] == score:
            continue
        estimate = smoothed_error(errors, n)
        if estimate <= bound:
            best = Calibration(score, n, errors, estimate)
    return best


class CalibrationPoints:
    """The (score, agreed) labels behind one threshold: answers the scoring model was never fitted on.

    A training run replaces them with its own held-out evaluations; each spot check of an answer
    the threshold let through adds one, and the threshold moves at once.
    """

    def __init__(self, points: Sequence[tuple[float, bool]] = ()) -> None:
        self.points: list[tuple[float, bool]] = list(points)

    def __len__(self) -> int:
        return len(self.points)

    def replace(self, points: Sequence[tuple[float, bool]]) -> None:
        self.points = list(points)

    def add(self, score: float, agreed: bool) -> None:
        self.points.append((score, agreed))

    def calibrate(self, bound: float) -> Calibration:
        """The threshold these points support under the error bound (see `calibrate`)."""
        return calibrate([p for p, _ in self.points], [ok for _, ok in self.points], bound)
