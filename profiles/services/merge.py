"""Merging profiles (called by identity.services.profile_merge): moving everything of one
profile onto another."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from django.db import connection, models
from django.db.models import Case, Value, When

from profiles.models import Event, Profile
from profiles.services.apply import profiles_save
from profiles.services.computed import profiles_sessions_recount
from profiles.services.money import unconverted_add
from profiles.services.traits import profile_traits_merge


def profiles_absorb(*, pairs: Sequence[tuple[Profile, Profile]]) -> None:
    """Move everything of each `duplicate` onto its `survivor` and leave `duplicate` empty, for
    many (survivor, duplicate) pairs in a fixed number of statements. No profile may appear in
    two pairs.

    Events move; traits merge most-recent-wins; context comes from whichever was seen last;
    computed features combine (sums, min/max) and sessions are recounted from the merged
    timeline. `duplicate` keeps its row with `merged_into=survivor`. Both rows must be locked
    by the caller, inside its transaction. Identities are the identity app's to move.
    """
    if not pairs:
        return
    moves = {duplicate.pk: survivor.pk for survivor, duplicate in pairs}
    rows_update_from_map(model=Event, key="profile_id", column="profile_id", mapping=moves)
    rows_update_from_map(
        model=Profile, key="merged_into_id", column="merged_into_id", mapping=moves
    )
    for survivor, duplicate in pairs:
        profile_traits_merge(into=survivor, other=duplicate)
        if duplicate.last_seen and (
            survivor.last_seen is None or duplicate.last_seen > survivor.last_seen
        ):
            survivor.context = {**survivor.context, **duplicate.context}
        else:
            survivor.context = {**duplicate.context, **survivor.context}
        survivor.first_seen = _min(survivor.first_seen, duplicate.first_seen)
        survivor.last_seen = _max(survivor.last_seen, duplicate.last_seen)
        survivor.first_order_at = _min(survivor.first_order_at, duplicate.first_order_at)
        survivor.last_order_at = _max(survivor.last_order_at, duplicate.last_order_at)
        survivor.event_count += duplicate.event_count
        survivor.order_count += duplicate.order_count
        survivor.revenue = Decimal(survivor.revenue) + Decimal(duplicate.revenue)
        for currency, amount in (duplicate.revenue_unconverted or {}).items():
            survivor.revenue_unconverted = unconverted_add(
                survivor.revenue_unconverted or {}, currency, Decimal(amount)
            )

        duplicate.traits, duplicate.trait_timestamps, duplicate.context = {}, {}, {}
        duplicate.first_seen = duplicate.last_seen = None
        duplicate.first_order_at = duplicate.last_order_at = None
        duplicate.event_count = duplicate.session_count = duplicate.order_count = 0
        duplicate.revenue, duplicate.revenue_unconverted = Decimal(0), {}
        duplicate.merged_into = survivor
    profiles_sessions_recount(profiles=[survivor for survivor, _ in pairs])
    profiles_save(profiles=[profile for pair in pairs for profile in pair])
    rows_update_from_map(model=Profile, key="id", column="merged_into_id", mapping=moves)


def rows_update_from_map(
    *, model: type[models.Model], key: str, column: str, mapping: Mapping[int, int]
) -> None:
    """Set `column` to mapping[row's `key`] on every row whose `key` is in `mapping`, in one
    statement (merges re-point events, identities and earlier merges this way)."""
    if not mapping:
        return
    if connection.vendor == "postgresql":
        table = model._meta.db_table
        sql = (
            f"UPDATE {table} AS t SET {column} = m.new "  # noqa: S608 - names are ours
            f"FROM unnest(%s::bigint[], %s::bigint[]) AS m(old, new) WHERE t.{key} = m.old"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(mapping), list(mapping.values())])
        return
    model._default_manager.filter(**{f"{key}__in": list(mapping)}).update(
        **{column: Case(*(When(**{key: old}, then=Value(new)) for old, new in mapping.items()))}
    )


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)
