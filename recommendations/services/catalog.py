"""Catalog writes: explicit (API, import) and learned from events.

An explicit write records the fields it set in `Item.catalog_fields`; learning from events
then leaves those alone. A new product id in an event creates the item; a later event updates
the fields the catalog did not set, unless the item already learned from a newer event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from recommendations import cache
from recommendations.catalog import item_fields_clean
from recommendations.models import Item

LEARNED_REFRESH = timedelta(hours=1)


@dataclass(frozen=True)
class ProductSighting:
    """One product as an event described it, with the event's time."""

    external_id: str
    fields: Mapping[str, Any]
    at: datetime


def item_create(*, fields: Mapping[str, Any]) -> Item:
    """Create an item from raw fields (cleaned here; raises catalog.InvalidItem). An item that
    events already created under this id is taken over: the given fields become catalog
    fields. Raises ItemExists if the catalog itself created it before."""
    cleaned = item_fields_clean(fields)
    with transaction.atomic():
        item = Item.objects.select_for_update().filter(external_id=cleaned["external_id"]).first()
        if item is not None and item.catalog_fields:
            raise ItemExists(cleaned["external_id"])
        if item is None:
            item = Item(external_id=cleaned["external_id"])
        _explicit_set(item, cleaned)
        item.save()
    _lists_invalidate()
    return item


class ItemExists(ValueError):
    pass


def item_update(*, item: Item, fields: Mapping[str, Any]) -> Item:
    """PATCH: set the given fields (cleaned here; raises catalog.InvalidItem)."""
    cleaned = item_fields_clean(fields, partial=True)
    new_id = cleaned.get("external_id", item.external_id)
    if new_id != item.external_id and Item.objects.filter(external_id=new_id).exists():
        raise ItemExists(new_id)
    _explicit_set(item, cleaned)
    item.save()
    _lists_invalidate()
    return item


def item_delete(*, item: Item) -> None:
    """Removes the item and its interactions; an event naming it later creates it again."""
    item.delete()
    _lists_invalidate()


def _lists_invalidate() -> None:
    # Cached lists may hold an item that is now out of stock, repriced or gone.
    transaction.on_commit(cache.all_invalidate)


def _explicit_set(item: Item, cleaned: Mapping[str, Any]) -> None:
    for name, value in cleaned.items():
        setattr(item, name, value)
    item.catalog_fields = sorted(set(item.catalog_fields) | (set(cleaned) - {"external_id"}))


@dataclass(frozen=True)
class UpsertResult:
    created: int
    updated: int


def items_upsert(*, rows: Iterable[Mapping[str, Any]]) -> UpsertResult:
    """Explicit writes of many already-cleaned rows (a batch of a bulk import), in a few
    statements: new ids are created, known ones updated; rows of one id apply in order (the
    rows after an id's first count as updates)."""
    rows = list(rows)
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        by_id[row["external_id"]] = {**by_id.get(row["external_id"], {}), **row}
    if not by_id:
        return UpsertResult(0, 0)
    with transaction.atomic():
        existing = {
            item.external_id: item
            for item in Item.objects.select_for_update().filter(external_id__in=list(by_id))
        }
        new: list[Item] = []
        now = timezone.now()
        for external_id, row in by_id.items():
            item = existing.get(external_id) or Item(external_id=external_id)
            _explicit_set(item, row)
            item.updated_at = now
            if item.pk is None:
                new.append(item)
        Item.objects.bulk_create(new)
        if existing:
            ordered = sorted(existing.values(), key=lambda i: i.pk)
            Item.objects.bulk_update(ordered, _updatable_fields())
    _lists_invalidate()
    return UpsertResult(created=len(new), updated=len(rows) - len(new))


def _updatable_fields() -> list[str]:
    return [
        f.name
        for f in Item._meta.concrete_fields
        if f.name not in ("id", "external_id", "created_at", "learned_at")
    ]


def items_learn(*, sightings: Iterable[ProductSighting]) -> dict[str, Item]:
    """Create or update items from what events said about products; returns every sighted
    item by external id. The newest sighting of an id wins among these; fields the catalog
    set, and items that learned from a newer event already, are left alone."""
    newest: dict[str, ProductSighting] = {}
    for sighting in sightings:
        eid = sighting.external_id
        known = newest.get(eid)
        if known is None:
            newest[eid] = sighting
        elif sighting.at >= known.at:
            # Fields the newer event leaves out keep the older event's value.
            newest[eid] = ProductSighting(eid, {**known.fields, **sighting.fields}, sighting.at)
        else:
            newest[eid] = ProductSighting(eid, {**sighting.fields, **known.fields}, known.at)
    if not newest:
        return {}
    now = timezone.now()
    items = {i.external_id: i for i in Item.objects.filter(external_id__in=list(newest))}
    missing = [
        Item(external_id=eid, learned_at=s.at, **s.fields)
        for eid, s in newest.items()
        if eid not in items
    ]
    if missing:
        # Another worker may create the same new product at once: keep theirs, read it back.
        Item.objects.bulk_create(missing, ignore_conflicts=True)
        created = Item.objects.filter(external_id__in=[i.external_id for i in missing])
        items.update({i.external_id: i for i in created})
    changed = []
    for eid, sighting in newest.items():
        item = items[eid]
        if item.learned_at is not None and item.learned_at > sighting.at:
            continue
        updates = {
            name: value
            for name, value in sighting.fields.items()
            if name not in item.catalog_fields and getattr(item, name) != value
        }
        # A popular product is sighted in every chunk: an event that changes nothing rewrites
        # the row (and takes its lock, which concurrent workers wait for) only hourly.
        stale = item.learned_at is None or sighting.at - item.learned_at > LEARNED_REFRESH
        if updates or stale:
            for name, value in updates.items():
                setattr(item, name, value)
            item.learned_at = sighting.at
            item.updated_at = now
            changed.append(item)
    if changed:
        changed.sort(key=lambda i: i.pk)  # one lock order for every worker: no deadlock
        Item.objects.bulk_update(changed, [*_updatable_fields(), "learned_at"])
    return items
