"""Storing a request's rows in one statement, quarantine, drop counts, and queueing processing."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from datetime import date, datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, JSONField, Value

from cdp.models import Source
from profiles.ingestion.messages import Rejected, Row, dumps, id_str, json_default, strip_nul
from profiles.models import DroppedMessageCount, Event, QuarantinedMessage

logger = logging.getLogger(__name__)

LAST_EVENT_AT_EVERY_SECONDS = 60
# Requests with fewer new events than this have them queued together (see _ProcessingQueue).
DIRECT_ENQUEUE_MIN = 50
ENQUEUE_DELAY_SECONDS = 0.2

# --- Storage -----------------------------------------------------------------------------------

# Columns ingestion fills, with their SQL types in the json_to_recordset row definition.
_COLUMNS = {
    "message_id": "text",
    "type": "text",
    "event": "text",
    "user_id": "text",
    "anonymous_id": "text",
    "timestamp": "timestamptz",
    "original_timestamp": "timestamptz",
    "sent_at": "timestamptz",
    "properties": "jsonb",
    "traits": "jsonb",
    "context": "jsonb",
    "payload": "jsonb",
    "is_bot": "boolean",
    "violations": "jsonb",
}
_FIXED_COLUMNS = ("source_id", "received_at")


def _extra_columns(cursor: Any, now: datetime) -> tuple[list[str], list[str]]:
    """Columns that Event gained after this code was written, with SQL literals of their
    defaults, so a new field with a default never breaks the raw insert."""
    names, literals = [], []
    for model_field in Event._meta.concrete_fields:
        column = model_field.column
        if model_field.primary_key or column in _COLUMNS or column in _FIXED_COLUMNS:
            continue
        if model_field.has_db_default():
            continue
        if getattr(model_field, "auto_now", False) or getattr(model_field, "auto_now_add", False):
            value: Any = now
        elif model_field.has_default():
            value = model_field.get_default()
        elif model_field.null:
            continue
        else:
            value = model_field.get_default()
        prepared = model_field.get_db_prep_save(value, connection)
        names.append(connection.ops.quote_name(column))
        literals.append(cursor.mogrify("%s", [prepared]).decode())
    return names, literals


_insert_sql_cached: str | None = None


def _insert_sql(cursor: Any, received_at: datetime) -> str:
    """The INSERT statement, built once per process unless a column's value is per request."""
    global _insert_sql_cached
    if _insert_sql_cached is not None:
        return _insert_sql_cached
    quote = connection.ops.quote_name
    extra_names, extra_literals = _extra_columns(cursor, received_at)
    columns = ", ".join(
        [*(quote(c) for c in _FIXED_COLUMNS), *(quote(c) for c in _COLUMNS), *extra_names]
    )
    selected = ", ".join(["%s", "%s", *(f"r.{quote(c)}" for c in _COLUMNS), *extra_literals])
    row_type = ", ".join(f"{quote(c)} {sql_type}" for c, sql_type in _COLUMNS.items())
    table = quote(Event._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {selected} "  # noqa: S608 (names are ours)
        f"FROM json_to_recordset(%s) AS r({row_type}) "
        "ON CONFLICT (source_id, message_id) DO NOTHING RETURNING id"
    )
    per_request = any(
        getattr(f, "auto_now", False)
        or getattr(f, "auto_now_add", False)
        or (f.has_default() and callable(f.default))
        for f in Event._meta.concrete_fields
        if f.column not in _COLUMNS and f.column not in _FIXED_COLUMNS and not f.primary_key
    )
    if not per_request:
        _insert_sql_cached = sql
    return sql


def _insert_postgresql(source: Source, rows: list[Row], received_at: datetime) -> list[int]:
    """One statement for the whole request: the rows travel as one JSON array that PostgreSQL
    unpacks with json_to_recordset, so no per-row work is left in Python but building that
    array (in C, by orjson, embedding each payload already serialised)."""
    with connection.cursor() as cursor:
        sql = _insert_sql(cursor.cursor, received_at)
        document = orjson.dumps(
            [
                {
                    "message_id": row.message_id,
                    "type": row.type,
                    "event": row.event,
                    "user_id": row.user_id,
                    "anonymous_id": row.anonymous_id,
                    "timestamp": row.timestamp,
                    "original_timestamp": row.original_timestamp,
                    "sent_at": row.sent_at,
                    "properties": row.properties,
                    "traits": row.traits,
                    "context": row.context,
                    "payload": orjson.Fragment(row.payload),
                    "is_bot": row.is_bot,
                    "violations": row.violations,
                }
                for row in rows
            ],
            default=json_default,
        )
        cursor.execute(sql, [source.pk, received_at, document.decode()])
        return [event_id for (event_id,) in cursor.fetchall()]


def _insert_portable(source: Source, rows: list[Row], received_at: datetime) -> list[int]:
    """Any database Django supports (the embedded SQLite default): skip known ids, insert the
    rest ignoring races, and read back the ids of the rows this call inserted."""
    message_ids = [row.message_id for row in rows]
    existing = set(
        Event.objects.filter(source=source, message_id__in=message_ids).values_list(
            "message_id", flat=True
        )
    )
    new_rows = [row for row in rows if row.message_id not in existing]
    if not new_rows:
        return []
    Event.objects.bulk_create(
        [
            Event(
                source=source,
                message_id=row.message_id,
                type=row.type,
                event=row.event,
                user_id=row.user_id,
                anonymous_id=row.anonymous_id,
                timestamp=row.timestamp,
                original_timestamp=row.original_timestamp,
                sent_at=row.sent_at,
                received_at=received_at,
                properties=orjson.loads(dumps(row.properties)),
                traits=orjson.loads(dumps(row.traits)),
                context=orjson.loads(dumps(row.context)),
                payload=orjson.loads(row.payload),
                is_bot=row.is_bot,
                violations=row.violations,
            )
            for row in new_rows
        ],
        ignore_conflicts=True,
    )
    return list(
        Event.objects.filter(
            source=source,
            message_id__in=[row.message_id for row in new_rows],
            received_at=received_at,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


def events_insert_is_one_statement() -> bool:
    """Whether events_insert is a single statement outside any transaction (so it commits by
    itself): PostgreSQL, and not called inside an atomic block."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def events_insert(source: Source, rows: list[Row], received_at: datetime) -> list[int]:
    if connection.vendor == "postgresql":
        return _insert_postgresql(source, rows, received_at)
    return _insert_portable(source, rows, received_at)


def dropped_count_add(source: Source, counts: dict[str, int], day: date) -> None:
    for reason, count in counts.items():
        reason = reason[:200]
        matching = DroppedMessageCount.objects.filter(source=source, reason=reason, day=day)
        if matching.update(count=F("count") + count):
            continue
        try:
            with transaction.atomic():
                DroppedMessageCount.objects.create(
                    source=source, reason=reason, day=day, count=count
                )
        except IntegrityError:  # created meanwhile by another request
            matching.update(count=F("count") + count)


def quarantine_record(rejected: Rejected, source: Source, received_at: datetime):
    message = rejected.message
    try:
        message = orjson.loads(dumps(strip_nul(message)))
    except (TypeError, orjson.JSONEncodeError):
        message = {"unserialisable": repr(message)[:1000]}
    if message is None:  # a JSON null, which JSONField would otherwise store as SQL NULL
        message = Value(None, JSONField())
    as_dict = message if isinstance(message, dict) else {}
    message_id = as_dict.get("messageId")
    event = as_dict.get("event") or as_dict.get("name")
    return QuarantinedMessage(
        source=source,
        received_at=received_at,
        message_id=id_str(message_id)[:255] if message_id is not None else "",
        event=str(event)[:255] if isinstance(event, str | int | float) else "",
        reason=rejected.reason,
        errors=strip_nul(rejected.errors),
        message=message,
    )


def _events_publish(event_ids: list[int]) -> None:
    from profiles.tasks import events_process_task

    chunk = settings.INGEST_PROCESS_CHUNK
    for start in range(0, len(event_ids), chunk):
        events_process_task.delay(event_ids[start : start + chunk])


class _ProcessingQueue:
    """Hands committed event ids to `events_process_task`.

    A request with many events (a batch) publishes its chunks at once. Small requests (single
    events from browsers and apps) are gathered per process for up to ENQUEUE_DELAY_SECONDS
    and published together, so a thousand single events a second cost a few tasks, not a
    thousand (publishing and processing one event per task would cost more CPU than the rest
    of ingestion). Ids still gathered when a process dies are picked up by the beat sweep
    (`events_process_pending_task`); the events themselves are already committed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._timer: threading.Timer | None = None
        self._pid = os.getpid()

    def add(self, event_ids: list[int]) -> None:
        from cdp.celery import app

        if app.conf.task_always_eager or len(event_ids) >= DIRECT_ENQUEUE_MIN:
            _events_publish(event_ids)
            return
        ready: list[int] = []
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's timer does not exist here
                self._ids, self._timer, self._pid = [], None, os.getpid()
            self._ids.extend(event_ids)
            if len(self._ids) >= DIRECT_ENQUEUE_MIN:
                ready, self._ids = self._ids, []
            elif self._timer is None:
                self._timer = threading.Timer(ENQUEUE_DELAY_SECONDS, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if ready:
            _events_publish(ready)

    def flush(self) -> None:
        with self._lock:
            ready, self._ids, self._timer = self._ids, [], None
        if ready:
            try:
                _events_publish(ready)
            except Exception:  # broker down: the beat sweep processes them later
                logger.exception("could not queue %s events for processing", len(ready))


_processing_queue = _ProcessingQueue()
atexit.register(_processing_queue.flush)


def events_enqueue(event_ids: list[int]) -> None:
    _processing_queue.add(event_ids)


_last_event_at_touched: dict[int, float] = {}


def source_touch(source: Source, received_at: datetime) -> None:
    """Source.last_event_at, written at most once a minute per process (a hot row otherwise)."""
    now = time.monotonic()
    if now - _last_event_at_touched.get(source.pk, -1e9) < LAST_EVENT_AT_EVERY_SECONDS:
        return
    _last_event_at_touched[source.pk] = now
    Source.objects.filter(pk=source.pk).update(last_event_at=received_at)
