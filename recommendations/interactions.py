"""From e-commerce events to interactions, and from interactions to the weights models learn
from: plain Python and numpy, no ORM, so the pipeline stage and the benchmark (which feeds
UCI Online Retail invoices through it as `Order Completed` events) build them the same way.

Segment's e-commerce spec puts one product in the properties of `Product Viewed`,
`Product Clicked` and `Product Added`, and a `products` list in `Order Completed`. Each
product becomes one interaction of the event's kind; the same product twice in one event is
one interaction with the quantities summed.

A person's weight for an item is the sum, over their interactions with it, of the kind's
weight times a recency decay `0.5 ** (age_days / half_life_days)` (settings
RECS_INTERACTION_WEIGHTS and RECS_HALF_LIFE_DAYS).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from profiles.features import ORDER_COMPLETED
from recommendations.catalog import product_external_id, product_fields_from_event

VIEW, CART, PURCHASE = "view", "cart", "purchase"
KINDS = (VIEW, CART, PURCHASE)
# Event name -> (kind, products listed in `products` rather than in the properties).
EVENT_KINDS: dict[str, tuple[str, bool]] = {
    "Product Viewed": (VIEW, False),
    "Product Clicked": (VIEW, False),
    "Product Added": (CART, False),
    ORDER_COMPLETED: (PURCHASE, True),
}
MAX_PRODUCTS_PER_EVENT = 500


@dataclass(frozen=True)
class ProductTouch:
    """One product an event touched: its catalog id, what the event said about it, how many."""

    external_id: str
    kind: str
    quantity: float
    fields: Mapping[str, Any]


def event_products(name: str, properties: Mapping[str, Any]) -> list[ProductTouch]:
    """The products an e-commerce event touched; [] for other events. Products without a
    `product_id` or `sku` are skipped, as are entries that are not objects."""
    known = EVENT_KINDS.get(name)
    if known is None or not isinstance(properties, Mapping):
        return []
    kind, listed = known
    if listed:
        products = properties.get("products")
        entries = products[:MAX_PRODUCTS_PER_EVENT] if isinstance(products, list) else []
    else:
        entries = [properties]
    touches: dict[str, ProductTouch] = {}
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        external_id = product_external_id(entry)
        if not external_id:
            continue
        quantity = _quantity(entry.get("quantity"))
        fields = product_fields_from_event(entry)
        seen = touches.get(external_id)
        if seen is not None:
            quantity += seen.quantity
            fields = {**seen.fields, **fields}
        touches[external_id] = ProductTouch(external_id, kind, quantity, fields)
    return list(touches.values())


def _quantity(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0
    try:
        quantity = float(value)
    except (TypeError, ValueError):
        return 1.0
    return quantity if 0 < quantity < 1e9 else 1.0


def decay(age_days: Any, half_life_days: float) -> Any:
    """Weight of an interaction `age_days` old (a number or a numpy array); never above 1, so
    a timestamp in the future counts as now."""
    import numpy as np

    return np.power(0.5, np.maximum(age_days, 0.0) / half_life_days)


def interaction_weights(
    *,
    kinds: Any,
    times: Any,
    now: datetime,
    weights: Mapping[str, float],
    half_life_days: float,
) -> Any:
    """Per interaction: its kind's weight times its recency decay (a float array). `times` are
    naive UTC (numpy has no time zones); `now` may be aware."""

    return kind_weights(kinds, weights) * decay(age_days(times, now), half_life_days)


def kind_weights(kinds: Any, weights: Mapping[str, float]) -> Any:
    """Each interaction's kind weight (a float array); unknown kinds weigh nothing."""
    import numpy as np

    kinds = np.asarray(kinds)
    result = np.zeros(len(kinds), dtype=np.float64)
    for kind, weight in weights.items():
        result[kinds == kind] = weight
    return result


def naive_utc(moment: datetime) -> datetime:
    """The same moment without a time zone, in UTC (what numpy's datetime64 holds)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def age_days(times: Any, now: datetime) -> Any:
    """Days from each of `times` (naive UTC) to `now`, as floats."""
    import numpy as np

    delta = np.datetime64(naive_utc(now), "s") - np.asarray(times, "datetime64[s]")
    return delta.astype("timedelta64[s]").astype(np.float64) / 86400.0
