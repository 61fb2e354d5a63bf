"""Paired comparisons of two models scored on the same held-out people: the mean difference and
a 95% interval from resampling people (a paired bootstrap). The recommenders' registry and the
segments' model runs judge a challenger against the serving model with these."""

from __future__ import annotations

from typing import Any, TypedDict

BOOTSTRAP_SAMPLES = 2000
# A held-out AUC is recomputed per resample (not a mean of per-person values): fewer resamples.
AUC_BOOTSTRAP_SAMPLES = 500
BOOTSTRAP_SEED = 7


class Interval(TypedDict):
    mean: float
    low: float
    high: float


def paired_bootstrap(
    challenger: Any, champion: Any, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> Interval:
    """Mean difference of per-person scores (challenger - champion) with a 95% interval from
    resampling people: the difference is real when the interval lies above zero."""
    import numpy as np

    difference = np.asarray(challenger, dtype=float) - np.asarray(champion, dtype=float)
    if len(difference) == 0:
        return {"mean": 0.0, "low": 0.0, "high": 0.0}
    rng = np.random.default_rng(seed)
    means = difference[rng.integers(0, len(difference), (samples, len(difference)))].mean(axis=1)
    return {
        "mean": float(difference.mean()),
        "low": float(np.percentile(means, 2.5)),
        "high": float(np.percentile(means, 97.5)),
    }


def paired_bootstrap_auc(
    outcomes: Any,
    challenger: Any,
    champion: Any,
    *,
    samples: int = AUC_BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Interval:
    """The held-out AUC of the challenger's scores minus the champion's on the same people, with
    a 95% interval from resampling people (resamples with one outcome only are skipped)."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    y = np.asarray(outcomes, dtype=int)
    ours, theirs = np.asarray(challenger, dtype=float), np.asarray(champion, dtype=float)
    if len(y) == 0 or len(set(y.tolist())) < 2:
        return {"mean": 0.0, "low": 0.0, "high": 0.0}
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(samples):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() == y[rows].max():
            continue
        differences.append(
            roc_auc_score(y[rows], ours[rows]) - roc_auc_score(y[rows], theirs[rows])
        )
    return {
        "mean": float(roc_auc_score(y, ours) - roc_auc_score(y, theirs)),
        "low": float(np.percentile(differences, 2.5)),
        "high": float(np.percentile(differences, 97.5)),
    }
