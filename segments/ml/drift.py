"""Population stability: how far today's score distribution has moved from the one a model
was trained with. Plain Python (no ORM, no numpy), shared by the propensity models and the
recommender (recommendations imports segments, never the reverse).

A training run keeps a `Distribution`: the decile edges of its scores and the share of
scores in each bin. Today's scores are put in the same bins and the population stability
index compares the two sets of shares:

    PSI = Σ (actual_i - expected_i) · ln(actual_i / expected_i)

Customary reading: below 0.1 stable, 0.1 to 0.2 a moderate shift, above 0.2 a significant
one (the population the model scores is no longer the one it learned from).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import TypedDict

BINS = 10
# An empty bin's share, so that the logarithm stays finite: a bin emptied (or filled from
# nothing) then adds a large but bounded term instead of infinity.
SHARE_FLOOR = 1e-4
STABLE, MODERATE = 0.1, 0.2


class Distribution(TypedDict):
    """Scores in bins: `edges` are the upper bounds of every bin but the last (bin i holds
    the scores ≤ edges[i] and > edges[i-1]); `shares` sum to 1; `count` scores were seen."""

    edges: list[float]
    shares: list[float]
    count: int


def reference_distribution(values: Sequence[float], *, bins: int = BINS) -> Distribution:
    """The decile edges of `values` (fewer bins when many values tie) and their shares."""
    ordered = sorted(float(v) for v in values)
    if not ordered:
        return {"edges": [], "shares": [], "count": 0}
    n = len(ordered)
    # Bin i holds the values ≤ its edge: the k-th edge is the (k/bins · n)-th smallest value.
    cuts = {ordered[max(0, (n * k) // bins - 1)] for k in range(1, bins)}
    edges = sorted(cut for cut in cuts if cut < ordered[-1])
    return {"edges": edges, "shares": binned_shares(ordered, edges), "count": n}


def binned_shares(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """The share of `values` in each of the len(edges) + 1 bins the edges make."""
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect_left(edges, float(value))] += 1
    total = sum(counts)
    return [c / total for c in counts] if total else [0.0] * len(counts)


def psi(expected_shares: Sequence[float], actual_shares: Sequence[float]) -> float:
    """Population stability index of `actual_shares` against `expected_shares` (same bins),
    each share floored at SHARE_FLOOR. 0 for identical distributions, never negative."""
    if len(expected_shares) != len(actual_shares):
        raise ValueError(
            f"{len(expected_shares)} expected shares against {len(actual_shares)} actual ones"
        )
    total = 0.0
    for expected, actual in zip(expected_shares, actual_shares, strict=True):
        e, a = max(expected, SHARE_FLOOR), max(actual, SHARE_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def drift_words(value: float, *, threshold: float) -> str:
    """What a PSI figure means, in words for the models pages."""
    if value >= threshold:
        level = "a significant shift" if value > MODERATE else "a shift past the threshold"
        return (
            f"PSI {value:.3f}: {level}. The people scored today no longer look like those the "
            "model learned from; its scores may mislead until it is retrained on recent data."
        )
    if value >= STABLE:
        return (
            f"PSI {value:.3f}: a moderate shift (0.1 to 0.2). Worth watching; the model still "
            "scores a population close to the one it learned from."
        )
    return f"PSI {value:.3f}: stable (below 0.1). Today's scores are distributed as at training."


class DriftStatus(TypedDict):
    psi: float
    warning: bool
    words: str


def drift_status(value: float, *, threshold: float) -> DriftStatus:
    """A PSI figure as the models pages show it: a warning at or past `threshold`."""
    return {
        "psi": value,
        "warning": value >= threshold,
        "words": drift_words(value, threshold=threshold),
    }
