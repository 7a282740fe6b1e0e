"""Error control per region of traffic: a local answer is served only where labelled evidence
about *this kind* of question, for the model in use, bounds its error under δ.

A region is a question's pattern: its wording with numbers, quoted words, names and the word a
word operation works on masked ("What is 20% of 580?" → "what is <n>% of <n>"). A region opens
when it holds at least `MIN_REGION_LABELS` labelled answers the tier would have served (out of
sample: spot checks, questions held back or held out, forwards compared with the generator's
draft) and the upper confidence bound on their error is ≤ δ.

The bound is a quantile of the region's Beta posterior under an empirical-Bayes prior fitted
across regions (a beta-binomial by moments): where regions err alike, a region borrows strength
from the others; where some regions err far more than the rest — a new pattern the model has not
learned — the prior widens and a region must show its own evidence. A new pattern starts closed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from shammah_tui.core.text import normalize_query
from shammah_tui.pipeline.calibration import CLOSED, Calibration, smoothed_error

#: Labelled answers a region needs before it may open.
MIN_REGION_LABELS = 10
#: Confidence of the upper bound on a region's error.
REGION_CONFIDENCE = 0.8
#: The prior's weight in answers, at most (regions that err exactly alike) and at least.
MAX_PRIOR_WEIGHT = 200.0
MIN_PRIOR_WEIGHT = 2.0
#: Quantiles of the scores tried as thresholds above the lowest safe one (`serving_threshold`).
THRESHOLD_QUANTILES = (0.5, 0.7, 0.8, 0.9, 0.95)

_QUOTED = re.compile(r"""(['"“”‘’])[^'"“”‘’]{1,40}\1|[“‘][^'"“”‘’]{1,40}[”’]""")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*")
_NAME = re.compile(r"(?<=[^\s.!?]\s)[A-Z][\w'-]*")
_AFTER_WORD = re.compile(r"\b(word|letters? in|letters? of)\s+[a-z]+\b")


def pattern_of(query: str) -> str:
    """The region a question belongs to: its wording with what varies between instances masked."""
    text = _QUOTED.sub(" <q> ", query)
    text = _NAME.sub("<name>", text)
    text = _NUMBER.sub("<n>", text)
    text = normalize_query(text)
    text = _AFTER_WORD.sub(lambda m: f"{m.group(1)} <w>", text)
    return re.sub(r"\s+", " ", text).strip()


def region_evidence(patterns: Sequence[str], served: Sequence[bool], agreed: Sequence[bool]) -> dict[str, list[int]]:
    """Per pattern, [labelled answers that would be served, of them wrong]."""
    evidence: dict[str, list[int]] = {}
    for pattern, would_serve, ok in zip(patterns, served, agreed):
        if would_serve:
            row = evidence.setdefault(pattern, [0, 0])
            row[0] += 1
            row[1] += 0 if ok else 1
    return evidence


def region_prior(evidence: Mapping[str, Sequence[int]]) -> tuple[float, float]:
    """Beta(α, β) over regions' error rates, by moments of the beta-binomial: the mean is the pooled
    error; the spread beyond binomial noise sets the weight α + β."""
    counts = [(n, e) for n, e in evidence.values() if n > 0]
    total = sum(n for n, _ in counts)
    mean = (sum(e for _, e in counts) + 0.5) / (total + 1)  # never exactly 0: one error in the offing
    if len(counts) < 2 or total <= len(counts):
        weight = MIN_PRIOR_WEIGHT
    else:
        spread = sum(n * (e / n - mean) ** 2 for n, e in counts) / (mean * (1 - mean))
        rho = (spread - len(counts)) / (total - len(counts))  # intra-region correlation
        weight = MAX_PRIOR_WEIGHT if rho <= 1 / (MAX_PRIOR_WEIGHT + 1) else 1 / rho - 1
        weight = min(MAX_PRIOR_WEIGHT, max(MIN_PRIOR_WEIGHT, weight))
    # Neither side below a half (the Jeffreys prior's): a prior piled up on zero error would
    # open a region on a handful of right answers however widely regions differ.
    return max(mean * weight, 0.5), max((1 - mean) * weight, 0.5)


def region_upper_bound(n: int, errors: int, prior: tuple[float, float]) -> float:
    """The REGION_CONFIDENCE upper bound on a region's error rate from its n labels."""
    alpha, beta = prior
    return _beta_quantile(round(alpha + errors, 4), round(beta + n - errors, 4), REGION_CONFIDENCE)


def neural_regions(queries: Sequence[str], served: Sequence[bool], agreed: Sequence[bool],
                   bound: float) -> tuple[dict[str, list[float]], frozenset[str]]:
    """Per pattern [labels the tier would serve, wrong, upper bound on the error], and the patterns
    that open: at least MIN_REGION_LABELS labels and the upper bound ≤ `bound`."""
    evidence = region_evidence([pattern_of(q) for q in queries], served, agreed)
    prior = region_prior(evidence)
    regions = {pattern: [float(n), float(e), round(region_upper_bound(n, e, prior), 5)]
               for pattern, (n, e) in evidence.items()}
    return regions, frozenset(p for p, (n, _, upper) in regions.items() if n >= MIN_REGION_LABELS and upper <= bound)


@lru_cache(maxsize=4096)
def _beta_quantile(a: float, b: float, q: float) -> float:
    """Quantile of Beta(a, b) by its CDF on a fine grid (error bounds live near 0: the grid is
    denser there)."""
    x = np.concatenate([np.linspace(1e-7, 0.1, 20_000, endpoint=False), np.linspace(0.1, 1 - 1e-7, 9_000)])
    log_pdf = (a - 1) * np.log(x) + (b - 1) * np.log1p(-x)
    pdf = np.exp(log_pdf - log_pdf.max())
    cdf = np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x))])
    cdf /= cdf[-1]
    return float(np.interp(q, cdf, x))


def serving_threshold(queries: Sequence[str], scores: Sequence[float], agreed: Sequence[bool], bound: float,
                      lowest: Calibration) -> tuple[Calibration, dict[str, list[float]], frozenset[str]]:
    """The threshold that serves the most, its regions and the open ones.

    ``lowest`` is the lowest threshold whose pooled estimated error is ≤ ``bound``. A lower
    threshold admits more answers, but where some of them are confidently wrong in a few regions,
    the prior fitted across regions widens and every region must show far more evidence of its
    own; a higher one can leave those out and open the rest. So the candidates are ``lowest`` and
    a few quantiles of the scores above it (few: each is another look at the same labels), and
    the one whose open regions hold the most labelled answers wins (the lowest on a tie). Each
    keeps its pooled estimate ≤ ``bound`` and each open region its own bound, whichever wins.
    """
    def regions_at(threshold: float) -> tuple[dict[str, list[float]], frozenset[str]]:
        return neural_regions(queries, [s >= threshold for s in scores], agreed, bound)

    best = (lowest, *regions_at(lowest.threshold))
    if lowest.threshold >= CLOSED or not scores:
        return best
    most = _served(*best[1:])
    for q in THRESHOLD_QUANTILES:
        threshold = float(np.quantile(scores, q))
        accepted = [ok for s, ok in zip(scores, agreed) if s >= threshold]
        errors = len(accepted) - sum(accepted)
        if threshold <= lowest.threshold or not accepted or smoothed_error(errors, len(accepted)) > bound:
            continue
        regions, open_regions = regions_at(threshold)
        if _served(regions, open_regions) > most:
            most = _served(regions, open_regions)
            best = (Calibration(threshold, len(accepted), errors, smoothed_error(errors, len(accepted))),
                    regions, open_regions)
    return best


def _served(regions: Mapping[str, Sequence[float]], open_regions: frozenset[str]) -> float:
    return sum(regions[p][0] for p in open_regions)
