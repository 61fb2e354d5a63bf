"""Computed features kept in profile columns (so segments can index them): sessions and orders.

A new session starts when `context.sessionId` changes, or, when events carry none, after 30
minutes without events. From `Order Completed`: order count, revenue (`properties.revenue`,
else `total`, else the sum of `products[].price * quantity`), first and last order time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models.fields.json import KeyTransform

from profiles.features import ORDER_COMPLETED
from profiles.models import Event, EventType, Profile
from profiles.services.money import (
    amount_converted,
    currency_rates,
    order_currency,
    unconverted_add,
)

SESSION_GAP = timedelta(minutes=30)
# Amounts beyond this are not real orders (and would overflow the revenue column): ignored.
MAX_ORDER_AMOUNT = Decimal("10000000000")
CENTS = Decimal("0.01")


def session_starts(
    *, previous_at: datetime | None, previous_session: str | None, at: datetime, session: str | None
) -> bool:
    """Whether an event at `at` starts a new session after an event at `previous_at`."""
    if previous_at is None:
        return True
    if session is not None and previous_session is not None:
        return session != previous_session
    return at - previous_at > SESSION_GAP


def sessions_count(timeline: Iterable[tuple[datetime, str | None]]) -> int:
    """Sessions in a time-ordered sequence of (event time, session id or None)."""
    count = 0
    previous_at: datetime | None = None
    previous_session: str | None = None
    for at, session in timeline:
        if session_starts(
            previous_at=previous_at, previous_session=previous_session, at=at, session=session
        ):
            count += 1
        previous_at, previous_session = at, session
    return count


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or abs(amount) >= MAX_ORDER_AMOUNT:
        return None
    return amount


def order_revenue(properties: Mapping[str, Any]) -> Decimal:
    """Revenue of an `Order Completed`: `revenue`, else `total`, else the products' sum."""
    for key in ("revenue", "total"):
        amount = _amount(properties.get(key))
        if amount is not None:
            return amount.quantize(CENTS)
    total = Decimal(0)
    products = properties.get("products")
    if isinstance(products, list):
        for product in products:
            if not isinstance(product, dict):
                continue
            price = _amount(product.get("price"))
            quantity = _amount(product.get("quantity", 1))
            if price is not None and quantity is not None:
                total += price * quantity
    if abs(total) >= MAX_ORDER_AMOUNT:
        return Decimal(0)
    return total.quantize(CENTS)


def order_revenue_add(profile: Profile, properties: Mapping[str, Any]) -> None:
    """Add an order's revenue to the profile, in the workspace currency; an amount in a
    currency without a rate is kept apart (`revenue_unconverted`), never added as it is."""
    amount = order_revenue(properties)
    currency = order_currency(properties)
    converted = amount_converted(amount, currency, currency_rates())
    if converted is not None:
        profile.revenue = Decimal(profile.revenue) + converted
    elif amount:
        profile.revenue_unconverted = unconverted_add(
            profile.revenue_unconverted or {}, currency, amount
        )


def event_is_order(event: Event) -> bool:
    """Whether the event is an order, the one event that moves the order features."""
    return event.type == EventType.TRACK and event.event == ORDER_COMPLETED


def profiles_sessions_recount(*, profiles: Sequence[Profile]) -> None:
    """Recount the sessions of these profiles from their stored timelines (one query)."""
    if not profiles:
        return
    by_id = {p.pk: p for p in profiles}
    for profile in profiles:
        profile.session_count = 0
    rows = (
        Event.objects.filter(profile_id__in=list(by_id), is_bot=False)
        .annotate(session=KeyTransform("sessionId", "context"))
        .order_by("profile_id", "timestamp", "id")
        .values_list("profile_id", "timestamp", "session")
    )
    current: int | None = None
    timeline: list[tuple[datetime, str | None]] = []
    for profile_id, moment, session in rows.iterator(chunk_size=5000):
        if profile_id != current:
            if current is not None:
                by_id[current].session_count = sessions_count(timeline)
            current, timeline = profile_id, []
        if session is None or isinstance(session, bool | dict | list) or session == "":
            session = None
        timeline.append((moment, None if session is None else str(session)))
    if current is not None:
        by_id[current].session_count = sessions_count(timeline)
