"""Claiming accepted events for processing and marking them processed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
from django.db import connection, transaction
from django.db.models import JSONField, Q
from django.db.models.base import ModelState
from django.utils import timezone

from profiles.models import Event, EventType


def events_claim(*, event_ids: Sequence[int], fill_to: int = 0) -> list[Event]:
    """Lock the given events that are still unprocessed, skipping ones another worker holds.

    With `fill_to`, also claim the oldest other pending events until there are that many: many
    small tasks (one per ingestion request) then coalesce into a few large transactions, and
    the tasks whose events were taken find nothing left to do.

    Call inside a transaction; the claim lasts until it ends, and `events_mark_processed` makes
    it permanent. Events come in event-time order, with `group_id` and `previous_id` set from
    the message. Every field is loaded but `payload` and `violations` (deferred: a stage that
    needs them reads them for the whole chunk in one query, never one per event).
    """
    ids = list(event_ids)
    if connection.vendor == "postgresql":
        return _events_lock_postgres(ids, fill=max(fill_to - len(ids), 0))
    if fill_to > len(ids):
        ids += list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .exclude(pk__in=ids)
            .order_by("id")
            .values_list("id", flat=True)[: fill_to - len(ids)]
        )
    events = list(
        Event.objects.select_for_update(skip_locked=True)
        .filter(pk__in=ids, processed_at__isnull=True)
        .defer("payload", "violations")
        .order_by("timestamp", "id")
    )
    found = dict(
        Event.objects.filter(
            pk__in=[e.pk for e in events if e.type in (EventType.GROUP, EventType.ALIAS)]
        ).values_list("pk", "payload")
    )
    for event in events:
        payload = found.get(event.pk)
        payload = payload if isinstance(payload, dict) else {}
        event.group_id = payload.get("groupId") if event.type == EventType.GROUP else None
        event.previous_id = payload.get("previousId") if event.type == EventType.ALIAS else None
    return events


# The lowest event id this process's next fill may take: the fill walks the pending index in
# id order, and the entries of events processed since the last vacuum are still in it (dead
# rows, each checked in the table) until vacuum runs, which a long transaction anywhere can
# hold back. Starting past what this process last took keeps the walk short. Events below it
# that are still pending (held by a worker that then failed) are claimed by their own task or
# by the pending-events safety net.
_fill_floor = 0


def _fill_floor_raise(to: int) -> None:
    global _fill_floor
    _fill_floor = max(_fill_floor, to)


_LOCKED_FIELDS = [
    f for f in Event._meta.concrete_fields if f.attname not in ("payload", "violations")
]


def _events_lock_postgres(ids: list[int], *, fill: int) -> list[Event]:
    """The hot path of processing: one statement, and instances built without the ORM's
    per-row machinery (on a chunk of events it costs more than the query itself)."""
    fields = _LOCKED_FIELDS
    names = [field.attname for field in fields]
    json_at = [i for i, field in enumerate(fields) if isinstance(field, JSONField)]
    table = Event._meta.db_table
    columns = ", ".join(connection.ops.quote_name(f.column or f.attname) for f in fields)
    # Bitmap scans are off for this statement: statistics lag behind a backlog (one that built
    # up since the last analyze looks like a few rows), and the planner would then read and
    # sort every pending row for each chunk instead of walking the pending index in id order.
    sql = (
        "SET LOCAL enable_bitmapscan = off; "  # noqa: S608 - names are ours, values bound
        f"WITH filled AS (SELECT id FROM {table} "
        "WHERE processed_at IS NULL AND id >= %s AND id <> ALL(%s::bigint[]) "
        "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
        f"SELECT {columns}, CASE type WHEN 'group' THEN payload -> 'groupId' "
        "WHEN 'alias' THEN payload -> 'previousId' END "
        f"FROM {table} WHERE id = ANY(%s::bigint[] || ARRAY(SELECT id FROM filled)) "
        "AND processed_at IS NULL ORDER BY timestamp, id FOR UPDATE SKIP LOCKED"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_fill_floor, ids, fill, ids])
        rows = cursor.fetchall()
        cursor.execute("RESET enable_bitmapscan")
    given = set(ids)
    filled = [row[0] for row in rows if row[0] not in given]
    if filled:
        # Only once this chunk commits: if it rolls back, its events are pending again and the
        # retry must be able to take them.
        top = max(filled) + 1
        transaction.on_commit(lambda: _fill_floor_raise(top))
    events = []
    for row in rows:
        values = list(row)
        for index in json_at:
            values[index] = _json_loads(values[index])
        linked = _json_loads(values.pop())  # groupId or previousId
        event = Event.__new__(Event)
        event._state = ModelState()
        event._state.adding = False
        event._state.db = connection.alias
        event.__dict__.update(zip(names, values, strict=True))
        event.group_id = linked if event.type == EventType.GROUP else None
        event.previous_id = linked if event.type == EventType.ALIAS else None
        events.append(event)
    return events


def _json_loads(value: Any) -> Any:
    if not isinstance(value, str | bytes):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:  # numbers beyond a double (ingestion never stores them)
        return json.loads(value)


def events_mark_processed(*, events: Sequence[Event], rewritten: Sequence[Event] = ()) -> None:
    """Store each event's resolved profile and mark it processed, in one statement.

    `rewritten` (some of `events`) also have their properties, context and payload saved, in
    the same write: a stage that rewrote them in memory (consent strips events) leaves the
    saving to this, so that each event row is written once.
    """
    if not events:
        return
    now = timezone.now()
    for event in events:
        event.processed_at = now
    if connection.vendor != "postgresql":
        Event.objects.bulk_update(events, ["profile", "processed_at"])
        events_content_save(events=rewritten)
        return
    from psycopg2.extras import Json

    content = {e.pk: e for e in rewritten}

    def column(name: str) -> list[Json | None]:
        return [Json(getattr(content[e.pk], name)) if e.pk in content else None for e in events]

    sql = (
        f"UPDATE {Event._meta.db_table} AS e "  # noqa: S608 - table name is ours
        "SET profile_id = u.profile_id, processed_at = %s, "
        "properties = COALESCE(u.properties, e.properties), "
        "context = COALESCE(u.context, e.context), payload = COALESCE(u.payload, e.payload) "
        "FROM unnest(%s::bigint[], %s::bigint[], %s::jsonb[], %s::jsonb[], %s::jsonb[]) "
        "AS u(id, profile_id, properties, context, payload) WHERE e.id = u.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                now,
                [e.pk for e in events],
                [e.profile_id for e in events],
                column("properties"),
                column("context"),
                column("payload"),
            ],
        )


def events_content_save(*, events: Sequence[Event]) -> None:
    """Save the properties, context and payload of events rewritten in memory (consent strips
    them), in one statement."""
    if not events:
        return
    if connection.vendor != "postgresql":
        Event.objects.bulk_update(events, ["properties", "context", "payload"], batch_size=500)
        return
    from psycopg2.extras import Json

    sql = (
        f"UPDATE {Event._meta.db_table} AS e "  # noqa: S608 - table name is ours
        "SET properties = u.properties, context = u.context, payload = u.payload "
        "FROM unnest(%s::bigint[], %s::jsonb[], %s::jsonb[], %s::jsonb[]) "
        "AS u(id, properties, context, payload) WHERE e.id = u.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                [e.pk for e in events],
                [Json(e.properties) for e in events],
                [Json(e.context) for e in events],
                [Json(e.payload) for e in events],
            ],
        )


def events_pending_ids(*, older_than: timedelta, limit: int) -> list[int]:
    """Ids of accepted events still unprocessed after `older_than` (their task was lost)."""
    cutoff = timezone.now() - older_than
    return list(
        Event.objects.filter(processed_at__isnull=True)
        .filter(Q(received_at__lt=cutoff))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
