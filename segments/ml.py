"""Clustering and propensity models (STYLE rule 14: heavy imports inside functions, artifacts
carry a format version and the hash of their training data, requests only read saved output).

Both work on plain frames so the same code runs on the project's events and on the UCI Online
Retail transactions the benchmark uses:
- `orders`: one row per order — customer, time, amount;
- `activity` (optional): one row per event — customer, time, name, category.

Propensity labels are time-based: features are computed from what happened before a cut-off
and the label is what happens in the 30 days after it. Training stacks several cut-offs; the
held-out AUC is measured on the most recent cut-off whose 30 days are complete, with the model
trained only on earlier ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
HORIZON_DAYS = 30
CUT_STEP_DAYS = 14
TRAIN_CUTS = 10
RANDOM_STATE = 7


# --- Features (pure: pandas in, pandas out) ------------------------------------------------


def order_features(orders: Any, cutoff: Any, activity: Any = None) -> Any:
    """One row per customer with at least one order before `cutoff`."""
    import numpy as np
    import pandas as pd

    past = orders[orders["time"] < cutoff]
    if past.empty:
        return pd.DataFrame()
    age_days = (cutoff - past["time"]).dt.total_seconds() / 86400.0
    past = past.assign(age=age_days.to_numpy())
    g = past.groupby("customer")
    feats = pd.DataFrame(
        {
            "recency": g["age"].min(),
            "tenure": g["age"].max(),
            "frequency": g["time"].nunique(),
            "monetary": g["amount"].sum(),
        }
    )
    feats["avg_order"] = feats["monetary"] / feats["frequency"]
    for days in (14, 30, 60, 90, 180):
        recent = past[past["age"] < days].groupby("customer")
        feats[f"orders_{days}d"] = recent["time"].nunique()
        feats[f"amount_{days}d"] = recent["amount"].sum()
    # Regularity: mean gap between orders and how overdue the next one is.
    span = (feats["tenure"] - feats["recency"]).clip(lower=0)
    feats["mean_gap"] = np.where(
        feats["frequency"] > 1, span / (feats["frequency"] - 1).clip(lower=1), np.nan
    )
    feats["overdue"] = feats["recency"] / feats["mean_gap"]
    feats["rate"] = feats["frequency"] / (feats["tenure"] + HORIZON_DAYS)
    active_days = past.assign(day=past["time"].dt.floor("D")).groupby("customer")["day"].nunique()
    feats["active_days"] = active_days
    if activity is not None and not activity.empty:
        seen = activity[activity["time"] < cutoff]
        seen_age = (cutoff - seen["time"]).dt.total_seconds() / 86400.0
        seen = seen.assign(age=seen_age.to_numpy())
        ga = seen.groupby("customer")
        feats["events_total"] = ga.size()
        feats["last_event"] = ga["age"].min()
        for days in (7, 30):
            feats[f"events_{days}d"] = seen[seen["age"] < days].groupby("customer").size()
    return feats.fillna(
        {c: 0 for c in feats.columns if c not in ("mean_gap", "overdue", "last_event")}
    )


def purchase_labels(orders: Any, cutoff: Any, customers: Any) -> Any:
    end = cutoff + dt.timedelta(days=HORIZON_DAYS)
    buyers = set(orders[(orders["time"] >= cutoff) & (orders["time"] < end)]["customer"])
    import pandas as pd

    return pd.Series([c in buyers for c in customers], index=customers, dtype=int)


def churn_labels(activity: Any, cutoff: Any, customers: Any) -> Any:
    """Churn: no activity at all in the 30 days after the cut-off."""
    end = cutoff + dt.timedelta(days=HORIZON_DAYS)
    active = set(activity[(activity["time"] >= cutoff) & (activity["time"] < end)]["customer"])
    import pandas as pd

    return pd.Series([c not in active for c in customers], index=customers, dtype=int)


def stacked(orders: Any, activity: Any, cuts: list[Any], label: str) -> tuple[Any, Any]:
    import pandas as pd

    frames, labels = [], []
    for cut in cuts:
        feats = order_features(orders, cut, activity)
        if feats.empty:
            continue
        if label == "purchase_30d":
            y = purchase_labels(orders, cut, feats.index)
        else:
            y = churn_labels(activity if activity is not None else orders, cut, feats.index)
        frames.append(feats)
        labels.append(y)
    if not frames:
        return pd.DataFrame(), pd.Series(dtype=int)
    return pd.concat(frames), pd.concat(labels)


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


def cluster_features(orders: Any, activity: Any, now: Any) -> Any:
    """Standardisable RFM + engagement + category affinity per customer."""
    import numpy as np
    import pandas as pd

    feats = order_features(orders, now, activity) if not orders.empty else pd.DataFrame()
    customers = set(feats.index)
    if activity is not None and not activity.empty:
        customers |= set(activity["customer"])
    base = pd.DataFrame(index=sorted(customers))
    columns = ["recency", "frequency", "monetary", "events_30d", "events_total"]
    for column in columns:
        base[column] = feats.get(column, 0.0)
    base["recency"] = base["recency"].fillna(365.0)
    if activity is not None and "category" in activity and activity["category"].notna().any():
        top = activity["category"].dropna().value_counts().index[:5]
        counts = (
            activity[activity["category"].isin(top)]
            .groupby(["customer", "category"])
            .size()
            .unstack(fill_value=0)
        )
        shares = counts.div(counts.sum(axis=1), axis=0)
        for category in top:
            base[f"affinity:{category}"] = shares.get(category)
    base = base.fillna(0.0)
    for column in ("frequency", "monetary", "events_30d", "events_total"):
        base[column] = np.log1p(base[column].clip(lower=0))
    return base


WORDS = {
    "recency": ("recently active", "long inactive"),
    "frequency": ("frequent buyers", "rare buyers"),
    "monetary": ("high spenders", "low spenders"),
    "events_30d": ("engaged this month", "quiet this month"),
    "events_total": ("long history", "short history"),
}


def describe_centroid(centroid: dict[str, float]) -> str:
    """A standardised centroid in words: what stands out (|z| >= 0.5), strongest first."""
    parts = []
    for name, z in sorted(centroid.items(), key=lambda item: -abs(item[1])):
        if abs(z) < 0.5:
            continue
        if name.startswith("affinity:"):
            if z > 0:
                parts.append(f"prefers {name.split(':', 1)[1]}")
            continue
        high, low = WORDS.get(name, (f"high {name}", f"low {name}"))
        # Recency is days since: a high value means inactive.
        if name == "recency":
            high, low = low, high
        parts.append(high if z > 0 else low)
    return ", ".join(parts[:4]) or "average on every feature"


def fit_clusters(
    features: Any, *, k_range: range = range(2, 9), sample: int = 5000
) -> dict[str, Any]:
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    matrix = scaler.fit_transform(features.to_numpy(dtype=float))
    rng = np.random.default_rng(RANDOM_STATE)
    idx = rng.choice(len(matrix), size=min(sample, len(matrix)), replace=False)
    best = None
    scores = {}
    for k in k_range:
        if k >= len(matrix):
            break
        model = MiniBatchKMeans(n_clusters=k, random_state=RANDOM_STATE, n_init=3, batch_size=4096)
        labels = model.fit_predict(matrix)
        if len(set(labels[idx])) < 2:
            continue
        score = float(silhouette_score(matrix[idx], labels[idx]))
        scores[k] = score
        if best is None or score > best[0]:
            best = (score, k, model, labels)
    if best is None:
        raise ValueError("too few profiles to cluster")
    score, k, model, labels = best
    summary = []
    for cluster in range(k):
        centroid = dict(
            zip(features.columns, model.cluster_centers_[cluster].round(3).tolist(), strict=True)
        )
        summary.append(
            {
                "id": cluster,
                "size": int((labels == cluster).sum()),
                "centroid": centroid,
                "description": describe_centroid(centroid),
            }
        )
    return {
        "model": model,
        "scaler": scaler,
        "k": k,
        "silhouette": score,
        "silhouettes": scores,
        "labels": labels,
        "summary": summary,
    }


def data_hash(*frames: Any) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    for frame in frames:
        if frame is not None and not frame.empty:
            digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def dump_artifact(payload: dict[str, Any]) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump({"format_version": FORMAT_VERSION, **payload}, buffer)
    return buffer.getvalue()


# --- The project's data ---------------------------------------------------------------------

ORDER_EVENT = "Order Completed"


def project_frames(*, profile_ids: Any = None) -> tuple[Any, Any]:
    """(orders, activity) frames from the events table; customers are profile ids. Profiles
    without `personalization` consent are left out once the consent app answers that."""
    import pandas as pd

    from profiles.models import Event

    events = Event.objects.filter(profile__isnull=False, profile__merged_into__isnull=True)
    if profile_ids is not None:
        events = events.filter(profile_id__in=profile_ids)
    allowed = _personalization_allowed()
    if allowed is not None:
        events = events.filter(profile_id__in=allowed)
    rows = events.values_list(
        "profile_id",
        "timestamp",
        "event",
        "properties__category",
        "properties__revenue",
        "properties__total",
    )
    activity = pd.DataFrame.from_records(
        rows.iterator(chunk_size=20000),
        columns=["customer", "time", "name", "category", "revenue", "total"],
    )
    if activity.empty:
        return pd.DataFrame(columns=["customer", "time", "amount"]), activity
    activity["time"] = pd.to_datetime(activity["time"], utc=True)
    orders = activity[activity["name"] == ORDER_EVENT].copy()
    amount = pd.to_numeric(orders["revenue"], errors="coerce").fillna(
        pd.to_numeric(orders["total"], errors="coerce")
    )
    orders = pd.DataFrame(
        {"customer": orders["customer"], "time": orders["time"], "amount": amount.fillna(0.0)}
    )
    return orders, activity[["customer", "time", "name", "category"]]


def _personalization_allowed() -> Any:
    """Profiles whose data may train models: the consent gate for `personalization`."""
    try:
        from consent import selectors as consent_selectors
    except ImportError:
        return None
    from profiles.models import Profile

    gate = consent_selectors.consent_profiles_allowed
    return gate(purpose="personalization", profiles=Profile.objects.all()).values("pk")


def model_train_request(*, kind: str, actor: Any = None) -> Any:
    """Record a queued run and start its task after commit (the ml queue)."""
    from django.db import transaction

    from segments.models import ModelRun
    from segments.tasks import model_train_task

    run = ModelRun.objects.create(
        kind=kind, requested_by=actor if getattr(actor, "pk", None) else None
    )
    transaction.on_commit(lambda: model_train_task.delay(run.pk))
    return run


def data_fingerprint() -> str:
    """Cheap change detector for scheduled retraining: events and profiles seen so far."""
    from django.db.models import Count, Max

    from profiles.models import Event

    agg = Event.objects.filter(profile__isnull=False).aggregate(n=Count("id"), last=Max("id"))
    return f"{agg['n']}:{agg['last']}"


def models_retrain_all() -> list[Any]:
    """Queue every kind whose data changed since its active model was trained."""
    from segments.models import ModelRun

    fingerprint = data_fingerprint()
    queued = []
    for kind in ModelRun.Kind.values:
        active = ModelRun.objects.filter(kind=kind, is_active=True).first()
        if active is not None and active.metrics.get("fingerprint") == fingerprint:
            continue
        queued.append(model_train_request(kind=kind))
    return queued


def model_train(*, run_id: int, now: Any = None) -> Any:
    """Train one recorded run, reporting progress on the row; on success it becomes the active
    model of its kind (the previous stays recorded) and its outputs are written to profiles."""
    from django.db import transaction
    from django.utils import timezone

    from segments.models import ModelRun

    run = ModelRun.objects.get(pk=run_id)
    if run.status not in (ModelRun.Status.QUEUED, ModelRun.Status.FAILED):
        return run
    now = now or timezone.now()

    def progress(percent: int, message: str) -> None:
        ModelRun.objects.filter(pk=run.pk).update(
            progress=percent, message=message[:300], status=ModelRun.Status.RUNNING
        )

    try:
        progress(5, "Loading events")
        fingerprint = data_fingerprint()
        orders, activity = project_frames()
        progress(30, "Computing features")
        from threadpoolctl import threadpool_limits

        # Two threads: the ml queue shares small machines with everything else.
        with threadpool_limits(limits=2):
            if run.kind == ModelRun.Kind.CLUSTER:
                outputs, fields = _train_clusters(orders, activity, now, progress)
            else:
                outputs, fields = _train_propensity(run.kind, orders, activity, now, progress)
        fields["data_hash"] = data_hash(orders, activity)
        fields["metrics"]["fingerprint"] = fingerprint
        progress(90, "Writing scores")
        with transaction.atomic():
            _write_scores(run, outputs)
            ModelRun.objects.filter(kind=run.kind, is_active=True).update(is_active=False)
            ModelRun.objects.filter(pk=run.pk).update(
                status=ModelRun.Status.DONE,
                progress=100,
                message="Done",
                is_active=True,
                finished_at=timezone.now(),
                format_version=FORMAT_VERSION,
                **fields,
            )
    except Exception as error:
        log.exception("model run %s failed", run.pk)
        ModelRun.objects.filter(pk=run.pk).update(
            status=ModelRun.Status.FAILED,
            message=f"{error.__class__.__name__}: {error}"[:300],
            finished_at=timezone.now(),
        )
    run.refresh_from_db()
    return run


def _train_clusters(
    orders: Any, activity: Any, now: Any, progress: Callable
) -> tuple[dict[int, float], dict[str, Any]]:
    import pandas as pd

    features = cluster_features(orders, activity, pd.Timestamp(now))
    if len(features) < 10:
        raise ValueError("too few profiles with events to cluster")
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


def _train_propensity(
    kind: str, orders: Any, activity: Any, now: Any, progress: Callable
) -> tuple[dict[int, float], dict[str, Any]]:
    import pandas as pd

    now = pd.Timestamp(now)
    if orders.empty and kind == "purchase_30d":
        raise ValueError("no orders to learn from")
    test_cut = now - dt.timedelta(days=HORIZON_DAYS)
    evaluated = fit_propensity(orders, activity, test_cut, label=kind)
    progress(70, f"Held-out AUC {evaluated['auc']:.3f}; refitting on every cut-off")
    cuts = [test_cut - dt.timedelta(days=CUT_STEP_DAYS * i) for i in range(TRAIN_CUTS)]
    x_all, y_all = stacked(orders, activity, cuts, kind)
    model = propensity_model().fit(x_all, y_all)
    current = order_features(orders, now, activity)
    scores = model.predict_proba(current[x_all.columns])[:, 1] if len(current) else []
    outputs = dict(zip(current.index.tolist(), [float(s) for s in scores], strict=True))
    return outputs, {
        "features": list(x_all.columns),
        "metrics": {
            "auc_held_out": round(evaluated["auc"], 4),
            "held_out_cutoff": test_cut.isoformat(),
            "train_rows": evaluated["train_rows"],
            "test_rows": evaluated["test_rows"],
            "test_positive_rate": round(evaluated["test_positive_rate"], 4),
            "scored_profiles": len(outputs),
        },
        "summary": [],
        "artifact": dump_artifact({"model": model, "features": list(x_all.columns)}),
    }


def _write_scores(run: Any, outputs: dict[int, float]) -> None:
    from segments.models import ProfileScore

    ProfileScore.objects.filter(kind=run.kind).delete()
    ProfileScore.objects.bulk_create(
        [
            ProfileScore(profile_id=pid, kind=run.kind, value=value, run=run)
            for pid, value in outputs.items()
        ],
        batch_size=5000,
    )


# --- Benchmark report ------------------------------------------------------------------------

RETAIL = "bench/data/online-retail/online_retail.parquet"
RETAIL_CUT = dt.datetime(2011, 11, 9)


def retail_orders(path: str = RETAIL) -> Any:
    import pandas as pd

    df = pd.read_parquet(path)
    df = df[
        df["CustomerID"].notna()
        & ~df["InvoiceNo"].astype(str).str.startswith("C")
        & (df["Quantity"] > 0)
    ]
    df = df.assign(amount=df["Quantity"] * df["UnitPrice"])
    orders = (
        df.groupby(["CustomerID", "InvoiceNo"])
        .agg(time=("InvoiceDate", "min"), amount=("amount", "sum"))
        .reset_index()
    )
    return orders.rename(columns={"CustomerID": "customer"})[["customer", "time", "amount"]]


def bench_report(print_fn: Callable[[str], None] = print) -> None:
    import time

    import pandas as pd
    from django.conf import settings
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    orders = retail_orders(str(settings.BASE_DIR / RETAIL))
    cut = pd.Timestamp(RETAIL_CUT)
    started = time.perf_counter()
    fitted = fit_propensity(orders, None, cut)
    seconds = time.perf_counter() - started
    x_test, y_test = fitted["x_test"], fitted["y_test"]
    print_fn(
        f"  UCI Online Retail, cut-off {cut:%Y-%m-%d}: {len(x_test)} customers, "
        f"{y_test.mean():.1%} buy in the next 30 days"
    )
    print_fn(
        "    anchor recency alone            AUC "
        f"{roc_auc_score(y_test, -x_test['recency']):.3f}  (reference 0.673)"
    )
    print_fn(
        "    anchor frequency alone          AUC "
        f"{roc_auc_score(y_test, x_test['frequency']):.3f}  (reference 0.724)"
    )
    x1, y1 = stacked(orders, None, [cut - pd.Timedelta(days=HORIZON_DAYS)], "purchase_30d")
    rfm = ["recency", "frequency", "monetary"]
    default = HistGradientBoostingClassifier(random_state=RANDOM_STATE).fit(x1[rfm], y1)
    print_fn(
        "    default HGB on RFM, one cut     AUC "
        f"{roc_auc_score(y_test, default.predict_proba(x_test[rfm])[:, 1]):.3f}  (reference 0.720)"
    )
    verdict = "OK" if fitted["auc"] >= 0.76 else "MISSED"
    print_fn(
        f"    our purchase-in-30-days model   AUC {fitted['auc']:.3f}  target >= 0.76  {verdict}  "
        f"({fitted['train_rows']} training rows over {TRAIN_CUTS} cut-offs, {seconds:.1f} s)"
    )
    _bench_project_models(print_fn)


def _bench_project_models(print_fn: Callable[[str], None]) -> None:
    """Training time at 100k profiles, on the scale benchmark's database."""
    import time

    import pandas as pd
    from django.utils import timezone

    from profiles.models import Profile

    ids = list(Profile.objects.order_by("id").values_list("pk", flat=True)[:100_000])
    if len(ids) < 1000:
        print_fn("  (no scale database: run the scale part first for the 100k-profile timings)")
        return
    started = time.perf_counter()
    orders, activity = project_frames(profile_ids=ids)
    load = time.perf_counter() - started
    now = pd.Timestamp(timezone.now())
    started = time.perf_counter()
    features = cluster_features(orders, activity, now)
    fitted = fit_clusters(features)
    cluster_seconds = time.perf_counter() - started
    print_fn(f"  100k profiles: {len(activity):,} events loaded in {load:.1f} s")
    print_fn(
        f"    clustering (k 2..8 by silhouette)  {cluster_seconds:.1f} s  chosen k={fitted['k']}  "
        f"silhouette {fitted['silhouette']:.3f}"
    )
    for row in fitted["summary"]:
        print_fn(f"      cluster {row['id']}: {row['size']:,} profiles — {row['description']}")
    for kind in ("purchase_30d", "churn"):
        started = time.perf_counter()
        test_cut = now - dt.timedelta(days=HORIZON_DAYS)
        evaluated = fit_propensity(orders, activity, test_cut, label=kind)
        print_fn(
            f"    propensity {kind:<12} {time.perf_counter() - started:.1f} s  "
            f"held-out AUC {evaluated['auc']:.3f} "
            f"(synthetic events: no real signal expected)"
        )
