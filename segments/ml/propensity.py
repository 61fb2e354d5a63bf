"""Propensity: a gradient-boosted model over stacked cut-offs, scored on a held-out one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from segments.ml.features import HORIZON_DAYS, RANDOM_STATE, stacked

CUT_STEP_DAYS = 14
TRAIN_CUTS = 10


def propensity_model() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        learning_rate=0.04,
        max_iter=300,
        max_leaf_nodes=15,
        min_samples_leaf=80,
        l2_regularization=1.0,
        random_state=RANDOM_STATE,
    )


def fit_propensity(
    orders: Any, activity: Any, test_cut: Any, label: str = "purchase_30d"
) -> dict[str, Any]:
    """Train on cut-offs before `test_cut` (their 30 days end before it), test on `test_cut`."""
    from sklearn.metrics import roc_auc_score

    cuts = [
        test_cut - dt.timedelta(days=HORIZON_DAYS + CUT_STEP_DAYS * i) for i in range(TRAIN_CUTS)
    ]
    x_train, y_train = stacked(orders, activity, cuts, label)
    x_test, y_test = stacked(orders, activity, [test_cut], label)
    model = propensity_model()
    model.fit(x_train, y_train)
    scores = model.predict_proba(x_test)[:, 1]
    auc = float(roc_auc_score(y_test, scores)) if y_test.nunique() > 1 else float("nan")
    return {
        "model": model,
        "features": list(x_train.columns),
        "auc": auc,
        "train_rows": len(x_train),
        "test_rows": len(x_test),
        "test_positive_rate": float(y_test.mean()) if len(y_test) else 0.0,
        "x_test": x_test,
        "y_test": y_test,
    }
