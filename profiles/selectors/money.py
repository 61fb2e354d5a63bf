"""Reads of the currency rates and of the revenue they could not convert."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from profiles.models import CurrencyRate, Profile


@dataclass(frozen=True)
class UnconvertedRevenue:
    currency: str
    amount: Decimal
    profiles: int


def currency_rates_list() -> QuerySet[CurrencyRate]:
    return CurrencyRate.objects.select_related("updated_by").order_by("currency")


def unconverted_revenue() -> list[UnconvertedRevenue]:
    """Per currency without a rate: the orders' total kept apart and the people it is on.
    Only profiles holding such an amount are read (the others store `{}`)."""
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    people: dict[str, int] = defaultdict(int)
    holders = Profile.objects.filter(merged_into__isnull=True).exclude(revenue_unconverted={})
    for apart in holders.values_list("revenue_unconverted", flat=True).iterator(chunk_size=5000):
        for currency, amount in (apart or {}).items():
            amounts[currency] += Decimal(amount)
            people[currency] += 1
    return [UnconvertedRevenue(code, amounts[code], people[code]) for code in sorted(amounts)]
