"""The project's data as frames, and the fitting of each model kind on them (the runs that call
these are `segments.services.model_runs`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db.models import Case, Count, F, JSONField, Max, QuerySet, When

from consent.selectors import consent_profiles_allowed
from profiles.features import ORDER_COMPLETED as ORDER_EVENT
from profiles.models import Event, Profile
from segments.ml.artifacts import dump_artifact
from segments.ml.clustering import fit_clusters
from segments.ml.features import (
    HORIZON_DAYS,
    LINE_COLUMNS,
    NotEnoughData,
    cluster_features,
    order_features,
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
        "order_products",
    )
    activity = pd.DataFrame.from_records(
        rows.iterator(chunk_size=20000),
        columns=["customer", "time", "name", "category", "revenue", "total", "products"],
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
    )
    lines = order_lines(orders)
    orders = pd.DataFrame(
        {"customer": orders["customer"], "time": orders["time"], "amount": amount.fillna(0.0)}
    )
    return orders, activity[["customer", "time", "name", "category"]], lines


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
    orders: Any, activity: Any, now: Any, progress: Callable
) -> tuple[dict[int, float], dict[str, Any]]:
    import pandas as pd

    features = cluster_features(orders, activity, pd.Timestamp(now))
    if len(features) < 10:
        raise NotEnoughData("too few profiles with events to cluster")
    progress(50, f"Choosing k for {len(features)} profiles")
    fitted = fit_clusters(features)
    outputs = dict(
        zip(features.index.tolist(), fitted["labels"].astype(float).tolist(), strict=True)
    )
    return outputs, {
        "features": list(features.columns),
        "metrics": {
            "k": fitted["k"],
            "silhouette": round(fitted["silhouette"], 4),
            "silhouettes": {str(k): round(v, 4) for k, v in fitted["silhouettes"].items()},
            "profiles": len(features),
        },
        "summary": fitted["summary"],
        "artifact": dump_artifact(
            {
                "model": fitted["model"],
                "scaler": fitted["scaler"],
                "features": list(features.columns),
            }
        ),
    }


def train_propensity(
    kind: str, orders: Any, activity: Any, now: Any, progress: Callable, lines: Any = None
) -> tuple[dict[int, float], dict[str, Any]]:
    import pandas as pd

    now = pd.Timestamp(now)
    if orders.empty and kind == "purchase_30d":
        raise NotEnoughData("no orders to learn from")
    test_cut = now - dt.timedelta(days=HORIZON_DAYS)
    evaluated = fit_propensity(orders, activity, test_cut, label=kind, lines=lines)
    progress(70, f"Held-out AUC {evaluated['auc']:.3f}; refitting on every cut-off")
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
        "features": features,
        "metrics": {
            "auc_held_out": round(evaluated["auc"], 4),
            "held_out_cutoff": test_cut.isoformat(),
            "train_rows": evaluated["train_rows"],
            "test_rows": evaluated["test_rows"],
            "test_positive_rate": round(evaluated["test_positive_rate"], 4),
            "scored_profiles": len(outputs),
        },
        "summary": [],
        "artifact": dump_artifact({"model": model, "features": features}),
    }
