"""Reads: the catalog and item imports (recommendation answers are in `serving`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Q, QuerySet

from recommendations.catalog import CATEGORY_SEPARATOR
from recommendations.models import Item, ItemImport


@dataclass(frozen=True)
class ItemFilters:
    q: str = ""
    category: str = ""
    brand: str = ""
    availability: str = ""
    price_min: Decimal | None = None
    price_max: Decimal | None = None


def item_list(*, filters: ItemFilters | None = None) -> QuerySet[Item]:
    """Items matching every filter given: `q` in the title or id, `category` as the path or
    any path under it, `brand` exactly, price bounds inclusive."""
    filters = filters or ItemFilters()
    items = Item.objects.all()
    if filters.q:
        items = items.filter(Q(title__icontains=filters.q) | Q(external_id=filters.q))
    if filters.category:
        items = items.filter(
            Q(category=filters.category)
            | Q(category__startswith=filters.category + CATEGORY_SEPARATOR)
        )
    if filters.brand:
        items = items.filter(brand=filters.brand)
    if filters.availability:
        items = items.filter(availability=filters.availability)
    if filters.price_min is not None:
        items = items.filter(price__gte=filters.price_min)
    if filters.price_max is not None:
        items = items.filter(price__lte=filters.price_max)
    return items


def item_get(*, external_id: str) -> Item | None:
    return Item.objects.filter(external_id=external_id).first()


def item_import_get(*, job_id: int) -> ItemImport | None:
    return ItemImport.objects.filter(pk=job_id).first()


def item_imports_recent(*, limit: int = 20) -> QuerySet[ItemImport]:
    return ItemImport.objects.order_by("-id")[:limit]
