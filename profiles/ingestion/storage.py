"""Storing a request's rows (COPY or one INSERT), quarantined messages and drop counts: the SQL
of ingestion (the threads that group single events and queue processing are in `batching`)."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Literal

import orjson
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, JSONField, Value
from psycopg2.errorcodes import UNIQUE_VIOLATION

from access.models import Source
from profiles.ingestion.batching import GroupCommit
from profiles.ingestion.messages import (
    Rejected,
    Row,
    dumps,
    id_str,
    json_default,
    nesting_cut,
    strip_nul,
)
from profiles.models import DroppedMessageCount, Event, QuarantinedMessage

LAST_EVENT_AT_EVERY_SECONDS = 60
# Requests with at least this many new events are stored with COPY, which costs PostgreSQL about
# a third less CPU per row than the INSERT statement but needs three more round trips.
COPY_MIN_ROWS = 20

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


_insert_sql_cached: dict[int, str] = {}


def _insert_sql(cursor: Any, received_at: datetime, *, value_rows: int = 0) -> str:
    """The INSERT statement for `value_rows` rows of parameters (returning the id, source and
    messageId of each row stored), or with 0 for one JSON array of rows of one source (returning
    ids); built once per process unless a column's value is per request."""
    if value_rows in _insert_sql_cached:
        return _insert_sql_cached[value_rows]
    quote = connection.ops.quote_name
    extra_names, extra_literals = _extra_columns(cursor, received_at)
    columns = ", ".join(
        [*(quote(c) for c in _FIXED_COLUMNS), *(quote(c) for c in _COLUMNS), *extra_names]
    )
    table = quote(Event._meta.db_table)
    if value_rows:
        one = ", ".join(["%s", "%s", *("%s" for _ in _COLUMNS), *extra_literals])
        rows_sql = "VALUES " + ", ".join([f"({one})"] * value_rows)
        returning = "id, source_id, message_id"
    else:
        selected = ", ".join(["%s", "%s", *(f"r.{quote(c)}" for c in _COLUMNS), *extra_literals])
        row_type = ", ".join(f"{quote(c)} {sql_type}" for c, sql_type in _COLUMNS.items())
        rows_sql = f"SELECT {selected} FROM json_to_recordset(%s) AS r({row_type})"  # noqa: S608
        returning = "id"
    sql = (
        f"INSERT INTO {table} ({columns}) {rows_sql} "
        f"ON CONFLICT (source_id, message_id) DO NOTHING RETURNING {returning}"
    )
    per_request = any(
        getattr(f, "auto_now", False)
        or getattr(f, "auto_now_add", False)
        or (f.has_default() and callable(f.default))
        for f in Event._meta.concrete_fields
        if f.column not in _COLUMNS and f.column not in _FIXED_COLUMNS and not f.primary_key
    )
    if not per_request and len(_insert_sql_cached) < 100:
        _insert_sql_cached[value_rows] = sql
    return sql


# (source, row, received_at) of one event to store.
PendingEvent = tuple[Source, Row, datetime]


def _insert_values(items: list[PendingEvent]) -> list[list[int]]:
    """One INSERT of rows given as parameters, each with its own source and reception time
    (rows of several requests); for each item, [its new id], or [] when it was already stored
    (or is a repeat of an earlier item)."""
    params: list[Any] = []
    first: dict[tuple[int, str], int] = {}
    for index, (source, row, received_at) in enumerate(items):
        key = (source.pk, row.message_id)
        if key in first:
            continue
        first[key] = index
        params += [
            source.pk,
            received_at,
            row.message_id,
            row.type,
            row.event,
            row.user_id,
            row.anonymous_id,
            row.timestamp,
            row.original_timestamp,
            row.sent_at,
            dumps(row.properties).decode(),
            dumps(row.traits).decode(),
            dumps(row.context).decode(),
            row.payload.decode(),
            row.is_bot,
            dumps(row.violations).decode(),
        ]
    results: list[list[int]] = [[] for _ in items]
    with connection.cursor() as cursor:
        sql = _insert_sql(cursor.cursor, items[0][2], value_rows=len(first))
        cursor.execute(sql, params)
        for event_id, source_id, message_id in cursor.fetchall():
            results[first[(source_id, message_id)]] = [event_id]
    return results


def _insert_postgresql(source: Source, rows: list[Row], received_at: datetime) -> list[int]:
    """One statement for the whole request. Many rows travel as one JSON array that PostgreSQL
    unpacks with json_to_recordset, so no per-row work is left in Python but building that
    array (in C, by orjson, embedding each payload already serialised); a single row (most
    browser and app requests) as plain parameters, cheaper for both sides."""
    if len(rows) == 1:
        return _insert_values([(source, rows[0], received_at)])[0]
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


def events_insert_group(items: list[PendingEvent]) -> Sequence[list[int] | DatabaseError]:
    """Single events of concurrent requests in one INSERT (`_single_row_writer`'s write; see
    GroupCommit for the contract). Measured here with 16 connections: ~400 us of PostgreSQL CPU
    per event one statement each, ~160 us in statements of 4."""
    try:
        return _insert_values(items)
    except DatabaseError:
        if len(items) == 1:
            raise
        # One bad row fails the whole statement: write each alone, so that only its own
        # request fails, not those that happened to share its statement.
        return [_insert_alone(item) for item in items]


def _insert_alone(item: PendingEvent) -> list[int] | DatabaseError:
    try:
        with transaction.atomic():
            return _insert_values([item])[0]
    except DatabaseError as exc:
        return exc


_single_row_writer: GroupCommit[PendingEvent, list[int]] = GroupCommit(events_insert_group)


# COPY's text format: a backslash starts an escape, tab and newline separate fields and rows.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIALS = frozenset("\\\t\n\r")
_NULL = b"\\N"


def _copy_text(value: str) -> bytes:
    if _COPY_SPECIALS.isdisjoint(value):
        return value.encode()
    return value.translate(_COPY_ESCAPES).encode()


def _copy_json(value: Any) -> bytes:
    # orjson escapes every control character inside strings and adds no whitespace, so a
    # backslash is the only byte COPY would misread.
    return dumps(value).replace(b"\\", b"\\\\")


def _copy_time(value: datetime | None) -> bytes:
    return value.isoformat().encode() if value is not None else _NULL


# False until first asked; the answer, None included, holds for the process (Event's columns
# do not change while it runs), so a table COPY cannot fill is not re-examined per request.
_copy_sql_cached: tuple[str, str] | Literal[False] | None = False


def _copy_statements(cursor: Any, received_at: datetime) -> tuple[str, str] | None:
    """(name of the id sequence, COPY statement), or None when Event has columns this code
    does not fill (their defaults are Django's, not the table's): then the INSERT is used."""
    global _copy_sql_cached
    if _copy_sql_cached is False:
        if _extra_columns(cursor, received_at)[0]:
            _copy_sql_cached = None
            return None
        quote = connection.ops.quote_name
        table = Event._meta.db_table
        columns = ", ".join(quote(c) for c in ("id", *_FIXED_COLUMNS, *_COLUMNS))
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
        sequence = cursor.fetchone()[0]
        _copy_sql_cached = (sequence, f"COPY {quote(table)} ({columns}) FROM STDIN")
    return _copy_sql_cached


def _copy_data(ids: list[int], source: Source, received_at: datetime, rows: list[Row]) -> bytes:
    fixed = b"%d\t%s\t" % (source.pk, _copy_time(received_at))
    lines = []
    for event_id, row in zip(ids, rows, strict=True):
        lines.append(
            b"%d\t" % event_id
            + fixed
            + b"\t".join(
                (
                    _copy_text(row.message_id),
                    _copy_text(row.type),
                    _copy_text(row.event),
                    _copy_text(row.user_id),
                    _copy_text(row.anonymous_id),
                    _copy_time(row.timestamp),
                    _copy_time(row.original_timestamp),
                    _copy_time(row.sent_at),
                    _copy_json(row.properties),
                    _copy_json(row.traits),
                    _copy_json(row.context),
                    row.payload.replace(b"\\", b"\\\\"),
                    b"t" if row.is_bot else b"f",
                    _copy_json(row.violations),
                )
            )
        )
    lines.append(b"")
    return b"\n".join(lines)


def _insert_copy(source: Source, rows: list[Row], received_at: datetime) -> list[int] | None:
    """COPY the rows with ids reserved beforehand, in a transaction (a savepoint when called
    inside one). COPY cannot skip a duplicate (source, messageId): if one is already stored,
    maybe by a concurrent request, nothing is kept and None tells the caller to use the INSERT,
    which skips it. None too when COPY cannot fill the table (see _copy_statements)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            statements = _copy_statements(cursor.cursor, received_at)
            if statements is None:
                return None
            sequence, copy_sql = statements
            cursor.execute(
                "SELECT nextval(%s::regclass) FROM generate_series(1, %s)", [sequence, len(rows)]
            )
            ids = [event_id for (event_id,) in cursor.fetchall()]
            data = _copy_data(ids, source, received_at, rows)
            with connection.wrap_database_errors:
                cursor.cursor.copy_expert(copy_sql, io.BytesIO(data))
    except IntegrityError as exc:
        if getattr(exc.__cause__, "pgcode", None) != UNIQUE_VIOLATION:
            raise
        return None
    return ids


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


def events_insert_commits() -> bool:
    """Whether events_insert commits by itself (its COPY transaction or its single statement):
    on PostgreSQL, when not called inside an atomic block."""
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def events_insert(source: Source, rows: list[Row], received_at: datetime) -> list[int]:
    """Insert the rows, skipping (source, messageId) pairs already stored; the new events' ids."""
    if connection.vendor != "postgresql":
        return _insert_portable(source, rows, received_at)
    if len(rows) == 1 and not connection.in_atomic_block:
        return _single_row_writer.submit((source, rows[0], received_at))
    if len(rows) >= COPY_MIN_ROWS:
        ids = _insert_copy(source, rows, received_at)
        if ids is not None:
            return ids
    return _insert_postgresql(source, rows, received_at)


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


def quarantine_record(
    rejected: Rejected, source: Source, received_at: datetime
) -> QuarantinedMessage:
    message = rejected.message
    try:
        # Cut first: a rejected message may be nested as deep as the JSON parser allows.
        message = orjson.loads(dumps(strip_nul(nesting_cut(message))))
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


_last_event_at_touched: dict[int, float] = {}


def source_touch(source: Source, received_at: datetime) -> None:
    """Source.last_event_at, written at most once a minute per process (a hot row otherwise)."""
    now = time.monotonic()
    if now - _last_event_at_touched.get(source.pk, -1e9) < LAST_EVENT_AT_EVERY_SECONDS:
        return
    _last_event_at_touched[source.pk] = now
    Source.objects.filter(pk=source.pk).update(last_event_at=received_at)
