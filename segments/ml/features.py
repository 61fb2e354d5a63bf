"""Features and time-based labels per customer and cut-off (pure: pandas in, pandas out)."""

from __future__ import annotations

import datetime as dt
from typing import Any

HORIZON_DAYS = 30
RANDOM_STATE = 7


class NotEnoughData(ValueError):
    """The project's data cannot train this model yet; the message says what is missing."""


ORDER_WINDOWS_DAYS = (14, 30, 60, 90, 180, 365)
# Exponentially decayed order counts, sum of exp(-age / scale): smooth purchase-rate estimates
# that weigh recent orders more; the long scales were the strongest single features.
DECAY_SCALES_DAYS = (7, 15, 30, 60, 120, 240)
# Undefined for one-order customers (and the momentum for those without recent lines): left
# missing (the models handle or impute it).
MAYBE_MISSING = (
    "mean_gap",
    "gap_std",
    "overdue",
    "days_past_expected",
    "last_event",
    "product_growth",
    "product_pop30",
)
# One row per product of an order, as `order_features` takes them.
LINE_COLUMNS = ("customer", "time", "order", "product", "quantity", "price")
# What a customer's order lines say beyond the order totals: how wide and how big the baskets
# are (wholesale buyers restock many products in bulk), and whether the products they bought
# lately are selling more now than before (a rising product draws its buyers back; this is how
# a seasonal peak shows up without any calendar in the model).
LINE_FEATURES = (
    "products",
    "products_90d",
    "lines_per_order",
    "qty_per_order",
    "mean_price",
    "median_qty",
    "product_growth",
    "product_pop30",
)
# The products a customer bought in this window are the ones whose momentum counts.
MOMENTUM_WINDOW_DAYS = 180


def order_features(orders: Any, cutoff: Any, activity: Any = None, lines: Any = None) -> Any:
    """One row per customer with at least one order before `cutoff`: recency, frequency and
    monetary value over several windows, decayed counts, regularity of the gaps between orders,
    trend, tenure and months active; with `activity`, engagement too; with `lines` (one row per
    order line: customer, time, order, product, quantity, price), `LINE_FEATURES` too."""
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
    feats["max_order"] = g["amount"].max()
    for days in ORDER_WINDOWS_DAYS:
        recent = past[past["age"] < days].groupby("customer")
        feats[f"orders_{days}d"] = recent["time"].nunique()
        feats[f"amount_{days}d"] = recent["amount"].sum()
    before = past[(past["age"] >= 90) & (past["age"] < 180)].groupby("customer")["time"].nunique()
    # Trend: the last 90 days against the 90 before them (smoothed so that 0/0 is 1).
    feats["trend_90d"] = (feats["orders_90d"].fillna(0) + 1) / (
        before.reindex(feats.index).fillna(0) + 1
    )
    for scale in DECAY_SCALES_DAYS:
        feats[f"decay_{scale}d"] = np.exp(-past["age"] / scale).groupby(past["customer"]).sum()
    # Regularity: the gaps between distinct order times, and how overdue the next order is.
    times = past[["customer", "time"]].drop_duplicates().sort_values(["customer", "time"])
    gaps = times.groupby("customer")["time"].diff().dt.total_seconds() / 86400.0
    by_customer = gaps.groupby(times["customer"])
    feats["mean_gap"] = by_customer.mean()
    feats["gap_std"] = by_customer.std()
    feats["overdue"] = feats["recency"] / feats["mean_gap"]
    feats["days_past_expected"] = feats["recency"] - feats["mean_gap"]
    feats["rate"] = feats["frequency"] / (feats["tenure"] + HORIZON_DAYS)
    feats["active_days"] = past["time"].dt.floor("D").groupby(past["customer"]).nunique()
    month = past["time"].dt.year * 12 + past["time"].dt.month
    feats["active_months"] = month.groupby(past["customer"]).nunique()
    if activity is not None and not activity.empty:
        # Only the two columns needed: copying the text columns of millions of events per
        # cut-off was most of the feature time at 100k profiles.
        seen = activity.loc[activity["time"] < cutoff, ["customer", "time"]]
        last = seen.groupby("customer")["time"].max()
        feats["events_total"] = seen.groupby("customer").size()
        feats["last_event"] = (cutoff - last).dt.total_seconds() / 86400.0
        for days in (7, 30):
            recent = seen[seen["time"] > cutoff - pd.Timedelta(days=days)]
            feats[f"events_{days}d"] = recent.groupby("customer").size()
    if lines is not None:
        # Always the same columns, even with no lines before this cut-off: stacked cut-offs and
        # the scoring frame must agree on them.
        feats = feats.join(line_features(lines, cutoff).reindex(columns=list(LINE_FEATURES)))
    return feats.fillna({c: 0 for c in feats.columns if c not in MAYBE_MISSING})


def line_features(lines: Any, cutoff: Any) -> Any:
    """`LINE_FEATURES` per customer with an order line before `cutoff`. A product's momentum is
    log((distinct buyers in the last 30 days + 1) / (distinct buyers per 30 days in the 60 before
    + 1)); a customer's is the mean over their lines of the last `MOMENTUM_WINDOW_DAYS`, with
    the popularity (distinct buyers in the last 30 days) of those products beside it."""
    import numpy as np
    import pandas as pd

    # An empty frame is checked first: built without rows, its `time` column has no datetime
    # type to compare with the cut-off.
    if lines.empty or (past := lines[lines["time"] < cutoff]).empty:
        return pd.DataFrame(columns=list(LINE_FEATURES), dtype=float)
    age = ((cutoff - past["time"]).dt.total_seconds() / 86400.0).to_numpy()
    past = past.assign(age=age)
    g = past.groupby("customer")
    orders = g["order"].nunique()
    feats = pd.DataFrame(
        {
            "products": g["product"].nunique(),
            "products_90d": past[past["age"] < 90].groupby("customer")["product"].nunique(),
            "lines_per_order": g.size() / orders,
            "qty_per_order": g["quantity"].sum() / orders,
            "mean_price": g["price"].mean(),
            "median_qty": g["quantity"].median(),
        }
    )
    buyers = past[past["age"] < HORIZON_DAYS].groupby("product")["customer"].nunique()
    earlier = past[(past["age"] >= HORIZON_DAYS) & (past["age"] < 3 * HORIZON_DAYS)]
    per_month_before = earlier.groupby("product")["customer"].nunique() / 2
    products = buyers.index.union(per_month_before.index)
    growth = np.log(
        (buyers.reindex(products).fillna(0) + 1)
        / (per_month_before.reindex(products).fillna(0) + 1)
    )
    recent = past[past["age"] < MOMENTUM_WINDOW_DAYS]
    by_customer = recent["customer"]
    feats["product_growth"] = recent["product"].map(growth).fillna(0).groupby(by_customer).mean()
    feats["product_pop30"] = recent["product"].map(buyers).fillna(0).groupby(by_customer).mean()
    return feats


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


def stacked(
    orders: Any, activity: Any, cuts: list[Any], label: str, lines: Any = None
) -> tuple[Any, Any]:
    import pandas as pd

    frames, labels = [], []
    for cut in cuts:
        feats = order_features(orders, cut, activity, lines)
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
