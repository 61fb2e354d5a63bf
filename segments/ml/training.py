"""The project's data as frames, and the fitting of each model kind on them (the runs that call
these are `segments.services.model_runs`)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any, TypedDict

from django.db.models import Case, Count, F, JSONField, Max, QuerySet, When

from consent.selectors import consent_profiles_allowed
from profiles.features import ORDER_COMPLETED as ORDER_EVENT
from profiles.models import Event, Profile
from profiles.services import currency_rates, order_currency
from segments.ml.artifacts import dump_artifact, load_artifact
from segments.ml.bgnbd import (
    expected_purchases,
    fit_bgnbd,
    probability_of_purchase,
    repeat_summary,
)
from segments.ml.card import (
    ModelCard,
    baseline_auc,
    permutation_importance_rows,
    reliability,
)
from segments.ml.clustering import fit_clusters, validate_clusters
from segments.ml.features import (
    HORIZON_DAYS,
    LINE_COLUMNS,
    NotEnoughData,
    cluster_features,
    order_features,
    purchase_labels,
    stacked,
)
from segments.ml.propensity import (
    capped,
    fit_propensity,
    informative_columns,
    learnable,
    propensity_model,
    training_cuts,
)


class ServingRun(TypedDict):
    """What the activation guard needs of the run that serves a kind: its configuration."""

    run: int
    algorithm: str
    features: list[str]
    k: int | None


# One thread for scikit-learn's OpenMP/BLAS: the ml queue shares small machines with everything
# else, and on a loaded 2-core machine two threads fitted the boosted model 7x slower than one
# (spinning threads waiting for each other); workers scale by processes instead.
ML_THREADS = 1


def project_frames(*, profile_ids: Any = None) -> tuple[Any, Any, Any]:
    """(orders, activity, lines) frames from the events table; customers are profile ids.
    `lines` has one row per product of an `Order Completed` event (Segment's e-commerce spec:
    `properties.products`). Profiles without `personalization` consent are left out."""
    import pandas as pd

    events = Event.objects.filter(profile__isnull=False, profile__merged_into__isnull=True)
    if profile_ids is not None:
        events = events.filter(profile_id__in=profile_ids)
    events = events.filter(profile_id__in=_personalization_allowed())
    # The product lists of orders only: other events (a started checkout) carry them too, and
    # they are the biggest values in the table.
    products = Case(
        When(event=ORDER_EVENT, then=F("properties__products")), output_field=JSONField()
    )
    rows = events.annotate(order_products=products).values_list(
        "profile_id",
        "timestamp",
        "event",
        "properties__category",
        "properties__revenue",
        "properties__total",
        "properties__currency",
        "order_products",
    )
    activity = pd.DataFrame.from_records(
        rows.iterator(chunk_size=20000),
        columns=[
            "customer",
            "time",
            "name",
            "category",
            "revenue",
            "total",
            "currency",
            "products",
        ],
    )
    if activity.empty:
        return (
            pd.DataFrame(columns=["customer", "time", "amount"]),
            activity,
            pd.DataFrame(columns=list(LINE_COLUMNS)),
        )
    activity["time"] = pd.to_datetime(activity["time"], utc=True)
    orders = activity[activity["name"] == ORDER_EVENT]
    amount = pd.to_numeric(orders["revenue"], errors="coerce").fillna(
        pd.to_numeric(orders["total"], errors="coerce")
    ) * _workspace_rates(orders["currency"])
    lines = order_lines(orders)
    orders = pd.DataFrame(
        {"customer": orders["customer"], "time": orders["time"], "amount": amount.fillna(0.0)}
    )
    return orders, activity[["customer", "time", "name", "category"]], lines


def _workspace_rates(currencies: Any) -> Any:
    """Per order, the rate to the workspace currency (profiles.services.money); NaN for a
    currency without a rate, so its amount is left out (0) rather than added as it is."""
    import pandas as pd

    rates = {code: float(rate) for code, rate in currency_rates().items()}
    codes = [
        order_currency({"currency": value}) if isinstance(value, str | None) else ""
        for value in currencies
    ]
    return pd.Series([rates.get(code, math.nan) for code in codes], index=currencies.index)


def order_lines(orders: Any) -> Any:
    """One row per product of each order (the frame's index is the order): what an SDK sent
    is not checked against the spec, so a product that is not an object is skipped, one without
    `product_id` or `sku` still counts for the basket (under an empty id), a missing quantity
    counts as 1 and a price that is not a number is left missing."""
    import pandas as pd

    records = [
        (
            customer,
            time,
            order,
            str(item.get("product_id") or item.get("sku") or ""),
            item.get("quantity", 1),
            item.get("price"),
        )
        for order, customer, time, products in zip(
            orders.index, orders["customer"], orders["time"], orders["products"], strict=True
        )
        if isinstance(products, list)
        for item in products
        if isinstance(item, dict)
    ]
    lines = pd.DataFrame.from_records(records, columns=list(LINE_COLUMNS))
    lines["time"] = pd.to_datetime(lines["time"], utc=True)
    for column in ("quantity", "price"):
        lines[column] = pd.to_numeric(lines[column], errors="coerce")
    lines["quantity"] = lines["quantity"].fillna(1.0)
    return lines


def _personalization_allowed() -> QuerySet[Any]:
    """Ids of the profiles whose data may train models: the consent gate for `personalization`."""
    gate = consent_profiles_allowed(purpose="personalization", profiles=Profile.objects.all())
    return gate.values("pk")


def data_fingerprint() -> str:
    """Cheap change detector for scheduled retraining: events and profiles seen so far."""
    agg = Event.objects.filter(profile__isnull=False).aggregate(n=Count("id"), last=Max("id"))
    return f"{agg['n']}:{agg['last']}"


def train_clusters(
    orders: Any, activity: Any, now: Any, progress: Callable, serving: ServingRun | None = None
) -> tuple[dict[int, float], dict[str, Any]]:
    """k-means on today's features, k chosen and checked on held-out profiles (against
    `serving`, the serving run's k, and recency alone), then refitted on every profile with
    that k. Fields carry the held-out figures and the activation guard's inputs."""
    import pandas as pd

    features = cluster_features(orders, activity, pd.Timestamp(now))
    if len(features) < 10:
        raise NotEnoughData("too few profiles with events to cluster")
    if len(features.drop_duplicates()) < 2:
        raise NotEnoughData("every profile has the same features: there is nothing to cluster")
    progress(40, f"Choosing k on held-out profiles of {len(features)}")
    checked = validate_clusters(features, serving_k=serving.get("k") if serving else None)
    k = checked["k"]
    progress(70, f"Fitting k = {k} on every profile")
    fitted = fit_clusters(features, k_range=range(k, k + 1))
    outputs = dict(
        zip(features.index.tolist(), fitted["labels"].astype(float).tolist(), strict=True)
    )
    for row in fitted["summary"]:
        row["name"] = row["description"]
    metrics: dict[str, Any] = {
        "k": k,
        "silhouette": round(fitted["silhouette"], 4),
        "silhouettes": {str(k): round(v, 4) for k, v in fitted["silhouettes"].items()},
        "profiles": len(features),
        "silhouette_held_out": _rounded(checked.get("silhouette")),
        "baseline_silhouette": _rounded(checked.get("baseline")),
        "held_out_profiles": checked.get("held_out", 0),
    }
    if "unchecked_reason" in checked:
        metrics["unchecked_reason"] = checked["unchecked_reason"]
    if serving and "serving" in checked:
        metrics["serving"] = {
            "run": serving["run"],
            "k": serving["k"],
            "figure": _rounded(checked["serving"]["silhouette"]),
            "same_configuration": serving["k"] == k,
            "bootstrap": _interval(checked.get("bootstrap")),
        }
    return outputs, {
        "algorithm": "kmeans",
        "features": list(features.columns),
        "metrics": metrics,
        "summary": fitted["summary"],
        "artifact": dump_artifact(
            {
                "model": fitted["model"],
                "scaler": fitted["scaler"],
                "features": list(features.columns),
            }
        ),
    }


def cluster_labels_today(artifact: bytes, orders: Any, activity: Any, now: Any) -> dict[int, float]:
    """Every profile's cluster by a saved clustering artifact on today's features; ValueError
    when today's features are not those it was fitted on (the top categories changed)."""
    import pandas as pd

    payload = load_artifact(artifact)
    features = cluster_features(orders, activity, pd.Timestamp(now))
    if list(features.columns) != payload["features"]:
        raise ValueError(
            "today's features are not those it was fitted on (the top categories changed)"
        )
    if features.empty:
        return {}
    matrix = payload["scaler"].transform(features.to_numpy(dtype=float))
    labels = payload["model"].predict(matrix)
    return dict(zip(features.index.tolist(), labels.astype(float).tolist(), strict=True))


def train_propensity(
    kind: str,
    orders: Any,
    activity: Any,
    now: Any,
    progress: Callable,
    lines: Any = None,
    serving: ServingRun | None = None,
) -> tuple[dict[int, float], dict[str, Any]]:
    """The supervised model, held out on the last 30 days and refitted on every cut-off; for a
    purchase model on data too young for it, BG/NBD instead. Fields carry the held-out AUC,
    the baseline's, the serving run's configuration's on the same rows, the model card and
    (purchase) the predicted lifetime values."""
    import pandas as pd

    now = pd.Timestamp(now)
    if orders.empty and kind == "purchase_30d":
        raise NotEnoughData("no orders to learn from")
    test_cut = now - dt.timedelta(days=HORIZON_DAYS)
    try:
        evaluated = fit_propensity(orders, activity, test_cut, label=kind, lines=lines)
    except NotEnoughData as error:
        if kind != "purchase_30d":
            raise
        progress(50, "Too young for the supervised model: fitting BG/NBD")
        return train_bgnbd(orders, now, young=str(error))
    x_test, y_test = evaluated["x_test"], evaluated["y_test"]
    progress(60, f"Held-out AUC {evaluated['auc']:.3f}; measuring the model card")
    curve, brier = reliability(y_test, evaluated["scores"])
    card: ModelCard = {
        "importance": permutation_importance_rows(evaluated["model"], x_test, y_test),
        "reliability": curve,
        "brier": brier,
        "training_window": _window(training_cuts(now), test_cut, now),
    }
    progress(70, "Refitting on every cut-off")
    # The cut-offs a model tested on `now` would train on: the held-out ones, a month later.
    cuts = training_cuts(now)
    x_all, y_all = stacked(orders, activity, cuts, kind, lines)
    learnable(y_all, cuts)
    features = informative_columns(x_all)
    model = propensity_model().fit(*capped(x_all[features], y_all))
    current = order_features(orders, now, activity, lines)
    scores = model.predict_proba(current[features])[:, 1] if len(current) else []
    outputs = dict(zip(current.index.tolist(), [float(s) for s in scores], strict=True))
    return outputs, {
        "algorithm": "supervised",
        "features": features,
        "metrics": {
            "auc_held_out": _rounded(evaluated["auc"]),
            "baseline_auc": _rounded(baseline_auc(kind, x_test, y_test)),
            "held_out_cutoff": test_cut.isoformat(),
            "train_rows": evaluated["train_rows"],
            "test_rows": evaluated["test_rows"],
            "test_positive_rate": round(evaluated["test_positive_rate"], 4),
            "scored_profiles": len(outputs),
            **_against_serving(serving, evaluated, orders),
        },
        "card": card,
        "summary": [],
        "extra_scores": _lifetime_values(orders, now) if kind == "purchase_30d" else {},
        "artifact": dump_artifact({"model": model, "features": features}),
    }


def _against_serving(
    serving: ServingRun | None, evaluated: dict[str, Any], orders: Any
) -> dict[str, Any]:
    """{"serving": card.Serving} when a run serves and its configuration can score the same
    held-out rows: the supervised model refitted on the same cut-offs with its feature list,
    or BG/NBD fitted on the same history."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from segments.ml.comparison import paired_bootstrap_auc

    y_test = evaluated["y_test"]
    if serving is None or y_test.nunique() < 2:
        return {}
    same = False
    if serving["algorithm"] == "bg_nbd":
        held = repeat_summary(orders, evaluated["cutoff"])
        try:
            params = fit_bgnbd(held)
        except NotEnoughData:
            return {}
        theirs = (
            pd.Series(probability_of_purchase(params, held), index=held.index)
            .reindex(evaluated["x_test"].index)
            .fillna(0.0)
            .to_numpy()
        )
    else:
        # Its features that still carry information (a column missing for everyone today
        # cannot be fitted); all of the candidate's: the same model.
        features = [f for f in serving["features"] if f in evaluated["features"]]
        if not features:
            return {}
        if set(features) == set(evaluated["features"]):
            theirs, same = evaluated["scores"], True
        else:
            x_train = evaluated["x_train_all"][features]
            model = propensity_model().fit(*capped(x_train, evaluated["y_train"]))
            theirs = model.predict_proba(evaluated["x_test_all"][features])[:, 1]
    ours = evaluated["scores"]
    interval = (
        {"mean": 0.0, "low": 0.0, "high": 0.0}
        if same
        else paired_bootstrap_auc(y_test.to_numpy(), ours, theirs)
    )
    return {
        "serving": {
            "run": serving["run"],
            "figure": _rounded(float(roc_auc_score(y_test, theirs))),
            "same_configuration": same,
            "bootstrap": _interval(interval),
        }
    }


def propensity_scores_today(
    artifact: bytes, orders: Any, activity: Any, now: Any, lines: Any = None
) -> dict[int, float]:
    """Every customer scored now by a saved propensity artifact, on the features as they are
    today (the supervised model) or today's repeat-buying summary (BG/NBD): the same people
    and the same computation the run scored at training, on newer data. By profile id."""
    import pandas as pd

    payload = load_artifact(artifact)
    now = pd.Timestamp(now)
    if payload["model"] == "bg_nbd":
        summary = repeat_summary(orders, now)
        if summary.empty:
            return {}
        scores = probability_of_purchase(payload["parameters"], summary)
        return dict(zip(summary.index.tolist(), [float(s) for s in scores], strict=True))
    current = order_features(orders, now, activity, lines)
    if current.empty:
        return {}
    scores = payload["model"].predict_proba(current[payload["features"]])[:, 1]
    return dict(zip(current.index.tolist(), [float(s) for s in scores], strict=True))


def scores_today(
    kind: str, artifact: bytes, orders: Any, activity: Any, now: Any, lines: Any = None
) -> dict[str, dict[int, float]]:
    """What a saved run of `kind` gives today's profiles, as a run's outputs are written: by
    kind (a purchase run brings the predicted lifetime values too), then by profile id.
    ValueError when the artifact cannot score today's data."""
    import pandas as pd

    if kind == "cluster":
        return {kind: cluster_labels_today(artifact, orders, activity, now)}
    scores = {kind: propensity_scores_today(artifact, orders, activity, now, lines)}
    if kind == "purchase_30d":
        payload = load_artifact(artifact)
        if payload["model"] == "bg_nbd":
            summary = repeat_summary(orders, pd.Timestamp(now))
            scores["predicted_ltv"] = _values(payload["parameters"], summary)
        else:
            scores.update(_lifetime_values(orders, pd.Timestamp(now)))
    return scores


BGNBD_FEATURES = ["repeat order days", "days from first to last order", "days since first order"]
LTV_DAYS = 365


def train_bgnbd(orders: Any, now: Any, *, young: str) -> tuple[dict[int, float], dict[str, Any]]:
    """BG/NBD's P(at least one order in the next 30 days) for every customer with an order.
    Held out like the supervised model when the data has a month of repeat buying before the
    last 30 days (then the activation guard applies); otherwise it serves unchecked, saying so."""
    from sklearn.metrics import roc_auc_score

    summary = repeat_summary(orders, now)
    try:
        params = fit_bgnbd(summary)
    except NotEnoughData as error:
        raise NotEnoughData(f"{young}; {error}") from None
    test_cut = now - dt.timedelta(days=HORIZON_DAYS)
    held = repeat_summary(orders, test_cut)
    y_test = purchase_labels(orders, test_cut, held.index)
    auc = baseline = None
    card: ModelCard = {"parameters": {k: round(v, 6) for k, v in params.items()}}
    try:
        held_params = fit_bgnbd(held)
    except NotEnoughData:
        held_params = None
    if held_params is not None and y_test.nunique() > 1:
        held_scores = probability_of_purchase(held_params, held)
        auc = float(roc_auc_score(y_test, held_scores))
        baseline = baseline_auc("purchase_30d", held.assign(frequency=held["x"] + 1), y_test)
        card["reliability"], card["brier"] = reliability(y_test, held_scores)
    card["training_window"] = {
        "from": orders["time"].min().isoformat(),
        "to": now.isoformat(),
        "held_out_from": test_cut.isoformat() if auc is not None else "",
    }
    scores = probability_of_purchase(params, summary)
    outputs = dict(zip(summary.index.tolist(), [float(s) for s in scores], strict=True))
    metrics: dict[str, Any] = {
        "auc_held_out": _rounded(auc),
        "baseline_auc": _rounded(baseline),
        "held_out_cutoff": test_cut.isoformat() if auc is not None else "",
        "test_rows": len(held) if auc is not None else 0,
        "scored_profiles": len(outputs),
        "supervised_refused": young,
    }
    if auc is None:
        metrics["unchecked_reason"] = (
            f"the supervised model cannot train yet ({young}) and no 30 days of repeat buying "
            "can be held out; BG/NBD needs no labels"
        )
    return outputs, {
        "algorithm": "bg_nbd",
        "features": BGNBD_FEATURES,
        "metrics": metrics,
        "card": card,
        "summary": [],
        "extra_scores": {"predicted_ltv": _values(params, summary)},
        "artifact": dump_artifact({"model": "bg_nbd", "parameters": params}),
    }


def _lifetime_values(orders: Any, now: Any) -> dict[str, dict[int, float]]:
    """Predicted value over the next LTV_DAYS: BG/NBD's expected orders times the customer's
    average order; none while BG/NBD cannot be fitted."""
    summary = repeat_summary(orders, now)
    try:
        params = fit_bgnbd(summary)
    except NotEnoughData:
        return {}
    return {"predicted_ltv": _values(params, summary)}


def _values(params: dict[str, float], summary: Any) -> dict[int, float]:
    expected = expected_purchases(params, summary, LTV_DAYS)
    values = expected * summary["avg_order"].fillna(0).to_numpy(dtype=float)
    return {int(pid): round(float(v), 2) for pid, v in zip(summary.index, values, strict=True)}


def _window(cuts: list[Any], test_cut: Any, now: Any) -> dict[str, str]:
    return {
        "from": min(cuts).isoformat(),
        "to": now.isoformat(),
        "held_out_from": test_cut.isoformat(),
    }


def _interval(interval: Any) -> dict[str, float] | None:
    return None if interval is None else {k: round(v, 4) for k, v in interval.items()}


def _rounded(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else round(value, 4)
