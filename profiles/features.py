"""A profile's computed features, defined once: the order event, the profile columns the
pipeline computes, the feature names built on them and their labels (a pure core: no ORM).

`profiles.services` keeps the columns, segments offer the features in their conditions (and
re-evaluate the order features only on orders), the models read orders, and the profile API and
360° page show them.
"""

# The event that is an order (Segment's e-commerce spec): it alone moves the order columns.
ORDER_COMPLETED = "Order Completed"

# Profile columns only an order moves.
ORDER_FIELDS = ("order_count", "revenue", "revenue_unconverted", "first_order_at", "last_order_at")
# Every profile column the pipeline computes from events.
COMPUTED_FIELDS = ("first_seen", "last_seen", "event_count", "session_count", *ORDER_FIELDS)

# Features by name → the column that holds them; the RFM names read the order columns.
NUMERIC_FEATURES = {
    "frequency": "order_count",
    "monetary": "revenue",
    "lifetime_value": "revenue",
    "order_count": "order_count",
    "revenue": "revenue",
    "event_count": "event_count",
    "session_count": "session_count",
}
DATETIME_FEATURES = {
    "last_seen": "last_seen",
    "first_seen": "first_seen",
    "first_order_at": "first_order_at",
    "last_order_at": "last_order_at",
}
# Days since the last order, or since last seen without orders: computed, no column.
RECENCY = "recency"
FEATURES = (*NUMERIC_FEATURES, *DATETIME_FEATURES, RECENCY)
# The features that only an order moves; the others move with every processed event.
ORDER_FEATURES = frozenset(
    name
    for name, column in {**NUMERIC_FEATURES, **DATETIME_FEATURES}.items()
    if column in ORDER_FIELDS
)

# Each feature in plain words, as segment definitions read and the profile page shows them.
FEATURE_LABELS = {
    RECENCY: "days since the last order (or visit)",
    "frequency": "number of orders",
    "monetary": "total spent",
    "lifetime_value": "lifetime value",
    "order_count": "number of orders",
    "revenue": "revenue",
    "event_count": "number of events",
    "session_count": "number of sessions",
    "last_seen": "last seen",
    "first_seen": "first seen",
    "first_order_at": "first order",
    "last_order_at": "last order",
    # Shown on a profile (its API `computed` and 360° page) but not offered in segments.
    "recency_days": "days since the last order",
    "last_seen_days": "days since last seen",
    "average_order_value": "average order value",
}
# The features that are amounts of money (shown with two decimals).
MONEY_FEATURES = frozenset({"monetary", "lifetime_value", "revenue", "average_order_value"})
