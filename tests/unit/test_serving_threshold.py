"""Which neural threshold the regions are opened at: the one under which the open regions hold the
most evidence, never one whose pooled estimate or regions break the bound."""

from __future__ import annotations

import itertools

from shammah_tui.pipeline.calibration import calibrate
from shammah_tui.pipeline.regions import neural_regions, pattern_of, serving_threshold

BOUND = 0.02


def points() -> tuple[list[str], list[float], list[bool]]:
    """Two patterns the model has learned, answered right at confidence 0.99; many others answered
    right at 0.85; three others it gets confidently wrong, at 0.85 too."""
    rows: list[tuple[str, float, bool]] = []
    rows += [(f"What is {n} in binary?", 0.99, True) for n in range(100, 130)]
    rows += [(f"What is {n}% of {2 * n}?", 0.99, True) for n in range(10, 40)]
    names = ["".join(p) for p in itertools.product("abcdefgh", repeat=2)][:43]
    rows += [(f"tell me fact {name} about {n}", 0.85, True) for name in names[:40] for n in range(5)]
    rows += [(f"tell me fact {name} about 7", 0.85, False) for name in names[40:]]
    queries, scores, agreed = (list(column) for column in zip(*rows))
    return queries, scores, agreed


def test_a_higher_threshold_opens_the_regions_that_confident_errors_elsewhere_keep_closed():
    queries, scores, agreed = points()
    lowest = calibrate(scores, agreed, BOUND)
    assert lowest.threshold == 0.85 and lowest.estimated_error <= BOUND
    # At the lowest safe threshold the three confidently wrong patterns widen the prior: nothing opens.
    assert neural_regions(queries, [s >= lowest.threshold for s in scores], agreed, BOUND)[1] == frozenset()
    chosen, regions, open_regions = serving_threshold(queries, scores, agreed, BOUND, lowest)
    assert chosen.threshold == 0.99 and chosen.errors == 0 and chosen.estimated_error <= BOUND
    assert open_regions == {pattern_of("What is 1 in binary?"), pattern_of("What is 1% of 2?")}
    assert all(regions[p][2] <= BOUND for p in open_regions)


def test_a_closed_calibration_stays_closed():
    queries, scores, agreed = points()
    agreed = [False] * len(agreed)
    lowest = calibrate(scores, agreed, BOUND)
    chosen, _, open_regions = serving_threshold(queries, scores, agreed, BOUND, lowest)
    assert chosen == lowest and open_regions == frozenset()
