"""Thresholds chosen so that the estimated error of local answers stays under δ.

The estimate for a set of accepted answers with `e` disagreements out of `n` is
the Laplace-smoothed rate (e + 1) / (n + 2): it is never zero on little data, so a
threshold is only opened once enough labelled answers back it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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


def served_error_threshold(p_labelled: Sequence[float], agreed: Sequence[bool], p_reached: Sequence[float],
                           bound: float, *, exact_served: int = 0, quantile: float = 0.9, floor: float = 0.3,
                           min_labels: int = 30, draws: int = 100, seed: int = 0,
                           prior: tuple[float, float] = (0.0, 1.0), prior_strength: float = 1.0) -> Calibration:
    """The lowest threshold on p whose served answers' estimated error stays under `bound`.

    For the semantic store, where a plain count of labelled answers above a threshold is too
    thin (its labels come mostly from queries it did not serve):

    1. Recalibrate: P(right | p) = σ(a + b·logit p), fitted on the labels with p ≥ `floor`, with
       the prior (a, b) ~ N(`prior`, 1/`prior_strength`): by default (0, 1) at strength 1, "the
       model is calibrated" until labels say otherwise; a model whose calibration was checked on
       held-out pairs passes what that check found, and a stronger prior with fewer `min_labels`
       (`AcceptanceModel.calibration_prior`), so the bound opens on the first few labels when
       they agree with the check and closes when the user's traffic says otherwise. Labels
       are drawn by p alone (a forward when p < τ, a spot check when served), so P(right | p)
       needs no weighting.
    2. The error of a threshold τ is the mean of 1 − P(right | p) over every query that reached
       the tier with p ≥ τ (`p_reached`: their p is known, labelled or not).
    3. An upper bound: the `quantile` of that mean over `draws` samples of (a, b) from the
       posterior's Laplace approximation.

    `exact_served` answers (the teacher's own, for the same question) are right by construction
    and count among the served: the bound is on every answer the learned tier gives. CLOSED
    until `min_labels` labels have p ≥ `floor`, or when p does not rank right above wrong.
    """
    from shammah_tui.pipeline.pair_features import map_logistic

    closed = Calibration(CLOSED, 0, 0, 1.0)
    p_lab, y = np.asarray(p_labelled, dtype=np.float64), np.asarray(agreed, dtype=np.float64)
    keep = p_lab >= floor
    reached = np.sort(np.asarray(p_reached, dtype=np.float64))[::-1]
    reached = reached[reached >= floor]
    if keep.sum() < min_labels or len(reached) == 0:
        return closed
    z = _logit(p_lab[keep])
    b, a = map_logistic(z[:, None], y[keep], np.array([prior[1], prior[0]]), prior_strength, 50)
    if b <= 0:
        return closed
    design = np.stack([np.ones_like(z), z], axis=1)  # (n, 2): bias, slope
    theta = np.array([a, b])
    q = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -40, 40)))
    hessian = (design * (q * (1 - q))[:, None]).T @ design + prior_strength * np.eye(2)
    chol = np.linalg.cholesky(np.linalg.inv(hessian))
    samples = theta + np.random.default_rng(seed).standard_normal((draws, 2)) @ chol.T  # (draws, 2)
    zr = _logit(reached)
    wrong = 1.0 / (1.0 + np.exp(np.clip(samples[:, :1] + samples[:, 1:] * zr[None, :], -40, 40)))  # (draws, n)
    count = np.arange(1, len(reached) + 1)
    estimate = np.quantile(np.cumsum(wrong, axis=1) / count, quantile, axis=0) * count / (count + exact_served)
    distinct = np.r_[reached[1:] != reached[:-1], True]  # cut only between different p
    ok = np.where((estimate <= bound) & distinct)[0]
    if len(ok) == 0:
        return closed
    i = int(ok[-1])
    return Calibration(float(reached[i]), i + 1, 0, float(estimate[i]))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))
