"""Propensity: a gradient-boosted and a linear model over stacked cut-offs, averaged; scored on
a held-out cut-off."""

from __future__ import annotations

import datetime as dt
from typing import Any

from segments.ml.features import HORIZON_DAYS, RANDOM_STATE, NotEnoughData, stacked

# Twenty weekly cut-offs: more (overlapping) examples than ten fortnightly ones, each labelled
# by the 30 days after it. Chosen, like the model below, on validation cut-offs inside the
# training period of the benchmark (never on its test period).
CUT_STEP_DAYS = 7
TRAIN_CUTS = 20
# Past this many stacked rows a deterministic sample is trained on: training time stays
# bounded on big installs, and the AUC barely moves.
MAX_TRAIN_ROWS = 150_000


def log_features(x: Any) -> Any:
    """Counts, amounts and days are heavy-tailed: the linear model sees log1p of them, with a
    missing value (a one-order customer's gap) as 0."""
    import numpy as np

    values = np.nan_to_num(np.asarray(x, dtype=float), nan=0.0)
    return np.log1p(np.clip(values, 0.0, None))


def propensity_model() -> Any:
    """The average of two views of the same features: a strongly regularised gradient-boosted
    model (interactions, thresholds) and a logistic regression on log features (smooth,
    steady). On the validation cut-offs the average beat each alone and the default HGB."""
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    boosted = HistGradientBoostingClassifier(
        learning_rate=0.02,
        max_iter=400,
        max_leaf_nodes=7,
        min_samples_leaf=200,
        l2_regularization=5.0,
        random_state=RANDOM_STATE,
    )
    linear = make_pipeline(
        FunctionTransformer(log_features),
        StandardScaler(),
        LogisticRegression(C=0.1, max_iter=3000),
    )
    return VotingClassifier([("boosted", boosted), ("linear", linear)], voting="soft")


def capped(x: Any, y: Any) -> tuple[Any, Any]:
    if len(x) <= MAX_TRAIN_ROWS:
        return x, y
    keep = x.reset_index(drop=True).sample(n=MAX_TRAIN_ROWS, random_state=RANDOM_STATE).index
    return x.iloc[keep.sort_values()], y.iloc[keep.sort_values()]


def informative_columns(x: Any) -> list[str]:
    """The columns with a value somewhere: one missing everywhere says nothing, and the boosted
    model fails on it (it has no value to bin). That happens for the line features when orders
    name no products, and for the gaps between orders while every customer has ordered once."""
    return [column for column in x.columns if x[column].notna().any()]


def learnable(y: Any, cuts: list[Any]) -> None:
    """Refuse, saying why, training rows a model cannot learn from (scikit-learn's own errors
    would not say what is missing from the data)."""
    if y.empty:
        raise NotEnoughData(
            f"not enough history: nobody had ordered before {max(cuts):%Y-%m-%d}, the latest "
            f"cut-off whose next {HORIZON_DAYS} days a model can learn from"
        )
    if y.nunique() < 2:
        raise NotEnoughData(
            "nothing to learn yet: at every training cut-off all customers had the same outcome"
        )


def training_cuts(test_cut: Any) -> list[Any]:
    """The TRAIN_CUTS cut-offs a model tested on `test_cut` trains on: their 30 days end by it."""
    return [
        test_cut - dt.timedelta(days=HORIZON_DAYS + CUT_STEP_DAYS * i) for i in range(TRAIN_CUTS)
    ]


def fit_propensity(
    orders: Any, activity: Any, test_cut: Any, label: str = "purchase_30d", lines: Any = None
) -> dict[str, Any]:
    """Train on cut-offs before `test_cut` (their 30 days end before it), test on `test_cut`."""
    from sklearn.metrics import roc_auc_score

    cuts = training_cuts(test_cut)
    x_train, y_train = stacked(orders, activity, cuts, label, lines)
    learnable(y_train, cuts)
    x_test, y_test = stacked(orders, activity, [test_cut], label, lines)
    columns = informative_columns(x_train)
    x_train_all, x_test_all = x_train, x_test
    x_train, x_test = x_train[columns], x_test.reindex(columns=columns)
    model = propensity_model()
    model.fit(*capped(x_train, y_train))
    scores = model.predict_proba(x_test)[:, 1]
    auc = float(roc_auc_score(y_test, scores)) if y_test.nunique() > 1 else float("nan")
    return {
        "model": model,
        "features": columns,
        "cuts": cuts,
        "scores": scores,
        "auc": auc,
        "cutoff": test_cut,
        "train_rows": len(x_train),
        "test_rows": len(x_test),
        "test_positive_rate": float(y_test.mean()) if len(y_test) else 0.0,
        "x_train": x_train,
        "y_train": y_train,
        "x_test": x_test,
        "y_test": y_test,
        # Every feature, before the informative ones were chosen: another feature list can be
        # fitted on the same rows (the serving run's, for the activation guard).
        "x_train_all": x_train_all,
        "x_test_all": x_test_all,
    }
