"""The activation guard of a model run, and the model card of a propensity run.

A run serves only when its held-out figure beats a naive baseline on the same people and
period (propensity: AUC against frequency alone for purchase, recency alone for churn, the
anchors the benchmark prints; clustering: silhouette against recency alone) and, when a model
already serves, beats that model's configuration refitted on the same data, with a paired
bootstrap interval above zero; otherwise it is kept as a challenger, not used.

The card says what a marketer needs to trust a score: the features and their importance, the
calibration (a reliability curve and the Brier score) and the training window.
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


class Serving(TypedDict, total=False):
    """The serving run's configuration refitted on the candidate's training data and scored on
    the same held-out people: its figure, whether it is the candidate's own configuration
    (then the two are the same model and tie by construction) and the paired bootstrap
    interval of the candidate's figure minus its own."""

    run: int
    figure: float | None
    same_configuration: bool
    bootstrap: dict[str, float]


def activation_decision(
    *,
    kind: str,
    auc: float | None,
    baseline: float | None,
    unchecked_reason: str = "",
    serving: Serving | None = None,
) -> tuple[bool, str]:
    """(serves, why) for a propensity run, on its held-out AUC. A run without a held-out
    figure serves only when `unchecked_reason` says why none can exist yet (a young shop's
    label-free model); otherwise it is not used."""
    return _decision(
        figure=auc,
        name="held-out AUC",
        baseline=baseline,
        baseline_words=BASELINES[kind][2],
        no_skill=(0.5, "guessing"),
        unchecked_reason=unchecked_reason,
        serving=serving,
    )


def cluster_decision(
    *,
    silhouette: float | None,
    baseline: float | None,
    unchecked_reason: str = "",
    serving: Serving | None = None,
) -> tuple[bool, str]:
    """(serves, why) for a clustering run, on its held-out silhouette; the naive baseline is
    recency alone (`segments.ml.clustering`), no structure at all (0) when it has none."""
    from segments.ml.clustering import BASELINE_WORDS

    return _decision(
        figure=silhouette,
        name="held-out silhouette",
        baseline=baseline,
        baseline_words=BASELINE_WORDS,
        no_skill=(0.0, "no structure"),
        unchecked_reason=unchecked_reason,
        serving=serving,
    )


def _decision(
    *,
    figure: float | None,
    name: str,
    baseline: float | None,
    baseline_words: str,
    no_skill: tuple[float, str],
    unchecked_reason: str,
    serving: Serving | None,
) -> tuple[bool, str]:
    """Serves only above the naive baseline, and, when a run serves, only above it beyond
    doubt (the interval's lower bound above zero) unless it is its own configuration
    refitted on newer data."""
    if figure is None or math.isnan(figure):
        if unchecked_reason:
            return True, f"Serves without a held-out check: {unchecked_reason}."
        return False, f"Not used: no {name} can be measured, nothing to compare."
    if baseline is None or math.isnan(baseline):
        baseline, baseline_words = no_skill
    if figure <= baseline:
        return False, (
            f"Not used: {name} {figure:.3f} is not above {baseline_words} ({baseline:.3f}); "
            "the previous model keeps serving."
        )
    above = f"{name} {figure:.3f} beats {baseline_words} ({baseline:.3f})"
    theirs = serving.get("figure") if serving else None
    if serving is None or theirs is None:
        return True, f"Serves: {above}."
    if serving.get("same_configuration"):
        return True, (
            f"Serves: {above}; the serving run #{serving['run']}'s configuration refitted on "
            "newer data (the same model, so it ties with it on the same held-out data)."
        )
    interval = serving["bootstrap"]
    against = (
        f"{name} {figure:.3f} against {theirs:.3f} for the serving run #{serving['run']}'s "
        f"configuration on the same held-out data (difference {interval['mean']:+.3f}, 95% CI "
        f"{interval['low']:+.3f} to {interval['high']:+.3f})"
    )
    if interval["low"] <= 0:
        return False, (
            f"Not used: {against}: not better beyond doubt; kept as a challenger, "
            f"run #{serving['run']} keeps serving."
        )
    return True, f"Serves: {against}, and {above}."


def below_baseline(*, kind: str, metrics: dict[str, Any]) -> str:
    """Why a run must never serve, even by rollback ("" when it may): its held-out figure
    was not above its naive baseline."""
    if kind == "cluster":
        from segments.ml.clustering import BASELINE_WORDS

        figure, baseline, words = (
            metrics.get("silhouette_held_out"),
            metrics.get("baseline_silhouette"),
            BASELINE_WORDS,
        )
        name = "held-out silhouette"
    else:
        figure, baseline, words = (
            metrics.get("auc_held_out"),
            metrics.get("baseline_auc"),
            BASELINES[kind][2],
        )
        name = "held-out AUC"
    if figure is None or baseline is None or figure > baseline:
        return ""
    return f"its {name} {figure:.3f} was not above {words} ({baseline:.3f})"


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
