"""Applying processed events to their profiles, and saving the profiles.

How an event changes its profile (all in event time, so the result does not depend on the
order in which workers happen to process events): its traits (`profiles.services.traits`), its
context (`profiles.services.context`) and its computed features (`profiles.services.computed`:
first/last seen, event count, session count, orders and revenue). Bot-flagged events are stored
and linked to their profile but change neither computed features nor context.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from profiles.features import COMPUTED_FIELDS
from profiles.models import Event, EventType, Profile
from profiles.services.computed import event_is_order, order_revenue_add, session_starts
from profiles.services.context import event_context, session_id
from profiles.services.traits import group_traits_set, trait_time, traits_set

SAVED_FIELDS = ["traits", "trait_timestamps", "context", *COMPUTED_FIELDS, "updated_at"]


def profile_apply_events(*, profile: Profile, events: Sequence[Event]) -> bool:
    """Apply one profile's new events to it in memory (the caller saves with `profiles_save`).

    Events are applied in event-time order. Returns True when an event arrived late (older
    than the profile's last seen), which makes the incremental session count unreliable: the
    caller then recounts sessions from the timeline with `profiles_sessions_recount`.
    """
    late = False
    for event in sorted(events, key=lambda e: (e.timestamp, e.pk)):
        at = trait_time(event.timestamp)
        context = event.context if isinstance(event.context, dict) else {}
        traits = event.traits if isinstance(event.traits, dict) else {}
        if event.type == EventType.IDENTIFY:
            context_traits = context.get("traits")
            if isinstance(context_traits, dict):
                traits_set(profile, context_traits, at)
            traits_set(profile, traits, at)
        elif event.type == EventType.GROUP:
            group_id = getattr(event, "group_id", None)
            if group_id:
                group_traits_set(profile, str(group_id), traits, at)
        if event.is_bot:
            continue

        moment = event.timestamp
        if profile.last_seen is None or moment >= profile.last_seen:
            session = session_id(context)
            if session_starts(
                previous_at=profile.last_seen,
                previous_session=profile.context.get("session_id"),
                at=moment,
                session=session,
            ):
                profile.session_count += 1
            profile.context.update(event_context(context, at))
            profile.last_seen = moment
        else:
            late = True
        if profile.first_seen is None or moment < profile.first_seen:
            profile.first_seen = moment
        profile.event_count += 1
        if event_is_order(event):
            props = event.properties if isinstance(event.properties, dict) else {}
            profile.order_count += 1
            order_revenue_add(profile, props)
            if profile.first_order_at is None or moment < profile.first_order_at:
                profile.first_order_at = moment
            if profile.last_order_at is None or moment > profile.last_order_at:
                profile.last_order_at = moment
    return late


def profiles_save(*, profiles: Sequence[Profile]) -> None:
    """Save traits, context and computed features of many profiles in one statement."""
    if not profiles:
        return
    now = timezone.now()
    for profile in profiles:
        profile.updated_at = now
    if connection.vendor == "postgresql":
        _profiles_save_postgres(profiles)
    else:
        Profile.objects.bulk_update(profiles, SAVED_FIELDS)


def _profiles_save_postgres(profiles: Sequence[Profile]) -> None:
    from psycopg2.extras import Json

    table = Profile._meta.db_table
    columns: dict[str, tuple[str, list[Any]]] = {
        "id": ("bigint", [p.pk for p in profiles]),
        "traits": ("jsonb", [Json(p.traits) for p in profiles]),
        "trait_timestamps": ("jsonb", [Json(p.trait_timestamps) for p in profiles]),
        "context": ("jsonb", [Json(p.context) for p in profiles]),
        "first_seen": ("timestamptz", [p.first_seen for p in profiles]),
        "last_seen": ("timestamptz", [p.last_seen for p in profiles]),
        "event_count": ("integer", [p.event_count for p in profiles]),
        "session_count": ("integer", [p.session_count for p in profiles]),
        "order_count": ("integer", [p.order_count for p in profiles]),
        "revenue": ("numeric", [Decimal(p.revenue) for p in profiles]),
        "revenue_unconverted": ("jsonb", [Json(p.revenue_unconverted) for p in profiles]),
        "first_order_at": ("timestamptz", [p.first_order_at for p in profiles]),
        "last_order_at": ("timestamptz", [p.last_order_at for p in profiles]),
        "updated_at": ("timestamptz", [p.updated_at for p in profiles]),
    }
    names = list(columns)
    unnest = ", ".join(f"%s::{columns[name][0]}[]" for name in names)
    assignments = ", ".join(f"{name} = u.{name}" for name in names if name != "id")
    sql = (
        f"UPDATE {table} AS p SET {assignments} "  # noqa: S608 - names are ours, values bound
        f"FROM unnest({unnest}) AS u({', '.join(names)}) WHERE p.id = u.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [columns[name][1] for name in names])
