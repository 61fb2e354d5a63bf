"""Money in one currency: the workspace's (WORKSPACE_CURRENCY).

An order's amount is in the order's `currency` (Segment's e-commerce spec; none means the
workspace currency). It is converted with the admin-set rate (`CurrencyRate`) when the order is
processed; an order in a currency without a rate is never added to the revenue silently: its
amount is kept apart on the profile, per currency, and campaign results report it apart too.
Rates are read once per process every RATES_TTL_SECONDS, so a changed rate reaches every
worker within that time (and this process at once).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction

from access.services import audit_record
from profiles.models import CurrencyRate

RATES_TTL_SECONDS = 30.0
CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
CENTS = Decimal("0.01")


class _RatesCache:
    def __init__(self) -> None:
        self.rates: dict[str, Decimal] = {}
        self.loaded_at = float("-inf")

    def get(self) -> dict[str, Decimal]:
        if time.monotonic() - self.loaded_at > RATES_TTL_SECONDS:
            self.rates = dict(CurrencyRate.objects.values_list("currency", "rate"))
            self.loaded_at = time.monotonic()
        return self.rates

    def invalidate(self) -> None:
        self.loaded_at = float("-inf")


rates_cache = _RatesCache()


def workspace_currency() -> str:
    return settings.WORKSPACE_CURRENCY


def currency_rates() -> dict[str, Decimal]:
    """Rates to the workspace currency by currency code (the workspace's own is 1)."""
    return {**rates_cache.get(), workspace_currency(): Decimal(1)}


def order_currency(properties: Mapping[str, Any]) -> str:
    """The order's currency code, upper case; the workspace's when it names none. A value
    that is not a three-letter code is kept as given, so it is reported, not guessed."""
    value = properties.get("currency")
    if value is None or (isinstance(value, str) and not value.strip()):
        return workspace_currency()
    return str(value).strip().upper()[:16]


def amount_converted(
    amount: Decimal, currency: str, rates: Mapping[str, Decimal]
) -> Decimal | None:
    """`amount` of `currency` in the workspace currency, or None without a rate."""
    rate = rates.get(currency)
    if rate is None:
        return None
    return (amount * rate).quantize(CENTS)


def unconverted_add(totals: Mapping[str, str], currency: str, amount: Decimal) -> dict[str, str]:
    """Per-currency totals (as decimal strings, for a JSON column) with `amount` added."""
    return {**totals, currency: str(Decimal(totals.get(currency, "0")) + amount)}


def currency_rate_set(*, currency: str, rate: Decimal, actor: Any) -> CurrencyRate:
    """Set (or change) a rate; audited. Orders already processed keep the rate they had."""
    code = currency.strip().upper()
    if not CURRENCY_CODE.match(code):
        raise ValueError("A currency is a three-letter ISO 4217 code, e.g. EUR.")
    if code == workspace_currency():
        raise ValueError(f"{code} is the workspace currency: its rate is always 1.")
    if not rate.is_finite() or rate <= 0:
        raise ValueError("A rate is a positive number.")
    with transaction.atomic():
        row, created = CurrencyRate.objects.update_or_create(
            currency=code, defaults={"rate": rate, "updated_by": actor}
        )
        audit_record(
            actor=actor,
            action="currency_rate.set",
            resource="currency_rate",
            resource_id=code,
            details={"rate": str(rate), "created": created},
        )
    _rates_changed()
    return row


def currency_rate_delete(*, currency: str, actor: Any) -> None:
    with transaction.atomic():
        deleted, _ = CurrencyRate.objects.filter(currency=currency).delete()
        if deleted:
            audit_record(
                actor=actor,
                action="currency_rate.delete",
                resource="currency_rate",
                resource_id=currency,
            )
    _rates_changed()


def _rates_changed() -> None:
    # At once and again after the commit: a read between the two (another thread of this
    # process) would otherwise keep the old rates for RATES_TTL_SECONDS.
    rates_cache.invalidate()
    transaction.on_commit(rates_cache.invalidate)
