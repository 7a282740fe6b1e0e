"""The semantic tier's online threshold: a prior from the held-out check, moved by the user's labels."""

from __future__ import annotations

import numpy as np

from shammah_tui.pipeline.calibration import CLOSED, served_error_threshold
from shammah_tui.pipeline.pair_features import DEFAULT_WEIGHTS, AcceptanceModel

BOUND = 0.02


def _traffic(seed: int = 0) -> tuple[np.ndarray, int]:
    """The p of 300 queries that reached the tier (most far from any stored question), and the
    exact repeats served beside them."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(0.0, 0.3, 200), rng.uniform(0.3, 0.999, 100)]), 150


def _labels(n: int, wrong: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.9, 0.999, n)
    agreed = np.ones(n, dtype=bool)
    agreed[rng.choice(n, wrong, replace=False)] = False
    return p, agreed


PRIOR = {"prior": (0.7, 1.1), "prior_strength": 3.0, "min_labels": 10}


def test_a_checked_prior_opens_on_few_labels_that_agree_with_it():
    reached, exact = _traffic()
    p, agreed = _labels(12, 0)
    default = served_error_threshold(p, agreed, reached, BOUND, exact_served=exact)
    checked = served_error_threshold(p, agreed, reached, BOUND, exact_served=exact, **PRIOR)
    assert default.threshold == CLOSED  # 12 labels: fewer than the 30 it waits for
    assert checked.threshold < CLOSED and checked.estimated_error <= BOUND


def test_labels_that_contradict_the_prior_close_or_tighten_it():
    reached, exact = _traffic()
    good = served_error_threshold(*_labels(40, 0), reached, BOUND, exact_served=exact, **PRIOR)
    bad = served_error_threshold(*_labels(40, 12), reached, BOUND, exact_served=exact, **PRIOR)
    assert good.threshold < CLOSED
    assert bad.threshold == CLOSED or bad.threshold > good.threshold


def test_the_shipped_weights_carry_their_checked_prior():
    model = AcceptanceModel.load(DEFAULT_WEIGHTS)
    prior = model.calibration_prior
    a, b = prior["prior"]
    assert b > 0 and prior["min_labels"] < 30 and prior["prior_strength"] > 0
    check = model.provenance["heldout_calibration"]
    assert check["recalibration_on"] >= 500  # checked on held-out pairs, not a handful
    # weights without a check fall back to the weak default
    bare = AcceptanceModel(model.mean, model.scale, model.weights, model.bias, model.gate, model.veto,
                           provenance={}, hidden=model.hidden)
    assert bare.calibration_prior == {}
