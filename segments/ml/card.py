"""The activation guard and the model card of a propensity run.

A run serves only when its held-out AUC beats its simple baseline on the same customers and
period: frequency alone for purchase, recency alone for churn (the anchors the benchmark
prints). The card says what a marketer needs to trust a score: the features and their
importance, the calibration (a reliability curve and the Brier score) and the training window.
"""

from __future__ import annotations

import math
from typing import Any, TypedDict

# The baseline of each propensity kind: (feature, sign, words). Churn rises with recency.
BASELINES = {
    "purchase_30d": ("frequency", 1.0, "frequency alone"),
    "churn": ("recency", 1.0, "recency alone"),
}
RELIABILITY_BINS = 10
IMPORTANCE_ROWS = 5000
IMPORTANCE_REPEATS = 3


class Reliability(TypedDict):
    predicted: list[float]
    observed: list[float]
    counts: list[int]


class ModelCard(TypedDict, total=False):
    importance: list[tuple[str, float]]
    reliability: Reliability
    brier: float
    training_window: dict[str, str]
    parameters: dict[str, float]


def baseline_auc(kind: str, x_test: Any, y_test: Any) -> float | None:
    """The held-out AUC of the kind's one-feature baseline, None when it cannot be measured."""
    from sklearn.metrics import roc_auc_score

    feature, sign, _ = BASELINES[kind]
    if y_test.nunique() < 2 or feature not in x_test:
        return None
    return float(roc_auc_score(y_test, sign * x_test[feature].fillna(0).to_numpy()))


def activation_decision(
    *, kind: str, auc: float | None, baseline: float | None, unchecked_reason: str = ""
) -> tuple[bool, str]:
    """(serves, why). A run without a held-out figure serves only when `unchecked_reason` says
    why none can exist yet (a young shop's label-free model); otherwise it is not used."""
    words = BASELINES[kind][2]
    if auc is None or math.isnan(auc):
        if unchecked_reason:
            return True, f"Serves without a held-out check: {unchecked_reason}."
        return False, "Not used: the held-out period has one outcome only, nothing to compare."
    if baseline is None or math.isnan(baseline):
        baseline, words = 0.5, "guessing"
    if auc <= baseline:
        return False, (
            f"Not used: held-out AUC {auc:.3f} is not above {words} ({baseline:.3f}); "
            "the previous model keeps serving."
        )
    return True, f"Serves: held-out AUC {auc:.3f} beats {words} ({baseline:.3f})."


def reliability(y_test: Any, scores: Any) -> tuple[Reliability, float]:
    """The reliability curve (mean predicted against observed rate, per equal-width bin that
    holds customers) and the Brier score."""
    import numpy as np
    from sklearn.metrics import brier_score_loss

    y = np.asarray(y_test, dtype=float)
    p = np.clip(np.asarray(scores, dtype=float), 0.0, 1.0)
    bins = np.minimum((p * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
    curve: Reliability = {"predicted": [], "observed": [], "counts": []}
    for b in range(RELIABILITY_BINS):
        inside = bins == b
        if inside.any():
            curve["predicted"].append(round(float(p[inside].mean()), 4))
            curve["observed"].append(round(float(y[inside].mean()), 4))
            curve["counts"].append(int(inside.sum()))
    return curve, round(float(brier_score_loss(y, p)), 4)


def permutation_importance_rows(model: Any, x_test: Any, y_test: Any) -> list[tuple[str, float]]:
    """Held-out AUC lost when a feature is shuffled (on a fixed sample of the held-out rows),
    largest first: what the model leans on, measured where it did not train."""
    import numpy as np
    from sklearn.inspection import permutation_importance

    from segments.ml.features import RANDOM_STATE

    if y_test.nunique() < 2:
        return []
    if len(x_test) > IMPORTANCE_ROWS:
        rows = np.sort(
            np.random.default_rng(RANDOM_STATE).choice(len(x_test), IMPORTANCE_ROWS, replace=False)
        )
        x_test, y_test = x_test.iloc[rows], y_test.iloc[rows]
        if y_test.nunique() < 2:
            return []
    result = permutation_importance(
        model,
        x_test,
        y_test,
        scoring="roc_auc",
        n_repeats=IMPORTANCE_REPEATS,
        random_state=RANDOM_STATE,
    )
    rows = zip(x_test.columns, result.importances_mean, strict=True)
    return sorted(((str(c), round(float(v), 4)) for c, v in rows), key=lambda row: -row[1])
