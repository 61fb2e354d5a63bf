"""Ingestion: parse, validate, deduplicate and store Segment-spec messages, then queue processing.

The HTTP views (`profiles/ingest_views.py`) are thin: they read the body and the write key and
call `ingest_body_parse` and `ingest_messages`. Other code that injects events (seed_demo, the
tests) calls `ingest_messages` directly, so every event goes through the same checks.

What happens to each message, in order:
1. batch-level `context`/`integrations`/`sentAt` are merged in (the message's own keys win) and
   `writeKey` is removed (a secret must not be copied into every event);
2. it is checked against the JSON Schema of its type (`profiles/schemas.py`) and its timestamps
   are parsed; over 32 KB or invalid, it is quarantined with the reason (a single-message request
   is refused with a 400 instead, and nothing is stored);
3. ingest filters (`register_ingest_filter`, e.g. consent) may drop it: it is then counted in
   `DroppedMessageCount`, not stored;
4. a track event is checked against the source's tracking plan: in "flag" mode violations are
   recorded on the event, in "quarantine" mode a violating or unplanned event is quarantined;
5. all events of the request are inserted in ONE statement, ignoring (source, messageId)
   duplicates, in one transaction with the quarantined rows; after commit their ids are queued
   to `events_process_task` in chunks of settings.INGEST_PROCESS_CHUNK.

Timestamps (as Segment and RudderStack compute them; all four are kept):
- `originalTimestamp` is the client's clock when the call was made: the message's
  `originalTimestamp` (RudderStack) or else its `timestamp` (Segment libraries).
- `timestamp`, the event time used everywhere downstream, is an explicit `timestamp` sent next
  to an `originalTimestamp`, or the one a server-side library sent (server clocks are trusted:
  that is how historical events are imported); otherwise the client clock is corrected for skew
  as `receivedAt - (sentAt - originalTimestamp)` when `sentAt` is known. Client messages are
  those of the browser/mobile routes (`/v1/{i,t,p,s,g,a,b}`: `correct_clock_skew=True`) and
  RudderStack messages that only carry `originalTimestamp`.
- Without any of them, the event time is `receivedAt`.

A message without `messageId` gets a deterministic one, a digest of its content (minus
`sentAt`), so a retried identical request is still deduplicated.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any

import fastjsonschema
import orjson
from dateutil import parser as dateutil_parser
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F, JSONField, Value
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from jsonschema import SchemaError
from jsonschema.validators import validator_for

from cdp.models import Source
from cdp.selectors import source_for_write_key, token_digest
from profiles.models import DroppedMessageCount, Event, QuarantinedMessage, TrackingPlan
from profiles.schemas import FAST_VALIDATORS, MESSAGE_TYPES, MESSAGE_VALIDATORS

logger = logging.getLogger(__name__)

LOCAL_CACHE_SECONDS = 2
SOURCE_CACHE_SECONDS = 5
PLAN_CACHE_SECONDS = 5
LAST_EVENT_AT_EVERY_SECONDS = 60
# Requests with fewer new events than this have them queued together (see _ProcessingQueue).
DIRECT_ENQUEUE_MIN = 50
ENQUEUE_DELAY_SECONDS = 0.2


# --- Errors -----------------------------------------------------------------------------------


class IngestError(Exception):
    """A request ingestion refuses; `code`/`message` are what SDKs read from the error body."""

    status = 400
    code = "invalid_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class MalformedBodyError(IngestError):
    code = "malformed_json"


class InvalidMessageError(IngestError):
    code = "invalid_message"


class PayloadTooLargeError(IngestError):
    status = 413
    code = "request_too_large"


class InvalidWriteKeyError(IngestError):
    status = 401
    code = "invalid_write_key"


class TrackingPlanInvalidError(ValueError):
    """A tracking plan that cannot be saved; the message says which event schema and why."""


# --- Results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    dropped: int = 0
    event_ids: list[int] = field(default_factory=list)


# --- Ingest filters (extension point) -----------------------------------------------------------

IngestFilter = Callable[[Source, dict[str, Any]], str | None]
_INGEST_FILTERS: list[IngestFilter] = []


def register_ingest_filter(fn: IngestFilter) -> IngestFilter:
    """Register `fn(source, message) -> reason | None`, called for every valid message.

    Contract: `message` is the normalised message (ids as strings, batch context merged); the
    filter must not modify it, must be fast (it runs in the request, once per message) and must
    not raise. A message for which a filter returns a reason (a short constant string such as
    "no consent for analytics") is dropped: not stored, not quarantined, and counted per
    (source, reason, day) in `DroppedMessageCount`. Registering the same function twice is a
    no-op. Usable as a decorator; register from an AppConfig.ready().
    """
    if fn not in _INGEST_FILTERS:
        _INGEST_FILTERS.append(fn)
    return fn


def unregister_ingest_filter(fn: IngestFilter) -> None:
    if fn in _INGEST_FILTERS:
        _INGEST_FILTERS.remove(fn)


# --- Body parsing -------------------------------------------------------------------------------


def _gunzip_bounded(raw: bytes, *, limit: int) -> bytes:
    """Decompress gzip/zlib data (several gzip members too), never producing more than limit+1
    bytes, so a small "zip bomb" costs us no memory."""
    out = bytearray()
    data = raw
    while data:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        try:
            out += decompressor.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise MalformedBodyError(
                f"body: not valid gzip data ({exc})", code="invalid_encoding"
            ) from exc
        if len(out) > limit or decompressor.unconsumed_tail:
            raise PayloadTooLargeError(
                f"request body larger than {limit // 1024} KB once decompressed"
            )
        if not decompressor.eof:
            raise MalformedBodyError("body: truncated gzip data", code="invalid_encoding")
        data = decompressor.unused_data
    return bytes(out)


def ingest_body_parse(raw: bytes, *, content_encoding: str = "") -> Any:
    """The JSON document in a request body, whatever its content type, gzip or not.

    Limits apply after decompression: larger than settings.INGEST_MAX_REQUEST_BYTES raises
    PayloadTooLargeError (413); bad JSON raises MalformedBodyError naming line and column.
    """
    limit = settings.INGEST_MAX_REQUEST_BYTES
    if raw[:2] == b"\x1f\x8b" or (
        "deflate" in content_encoding.lower() and raw[:1] in (b"\x78", b"\x58")
    ):
        raw = _gunzip_bounded(raw, limit=limit)
    if len(raw) > limit:
        raise PayloadTooLargeError(f"request body larger than {limit // 1024} KB")
    if not raw.strip():
        raise MalformedBodyError("body: empty, expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(
            f"body: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc


# --- Write keys and sources ------------------------------------------------------------------


_local_sources: dict[str, tuple[float, Source]] = {}


def source_for_write_key_cached(*, write_key: str) -> Source | None:
    """The enabled source of a write key, with its tracking plan, cached so that a busy SDK
    costs no query and no network round trip per request.

    Two levels: this process's memory (LOCAL_CACHE_SECONDS) and the shared cache
    (SOURCE_CACHE_SECONDS), so disabling a source, rotating its key or editing its plan
    elsewhere than through `tracking_plan_save` takes effect within a few seconds. The local
    level is skipped inside a transaction (tests run in one that is rolled back) and cleared
    when a Source or TrackingPlan row is saved or deleted in this process.
    """
    if not write_key or len(write_key) > 512:
        return None
    digest = token_digest(write_key)
    use_local = not connection.in_atomic_block
    if use_local:
        hit = _local_sources.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    key = f"ingest:source:{digest}"
    source = cache.get(key)
    if source is None:
        source = source_for_write_key(write_key=write_key)
        if source is None:
            return None
        source._ingest_plan = _plan_state_load(source.pk)
        cache.set(key, source, SOURCE_CACHE_SECONDS)
    if use_local:
        if len(_local_sources) > 10_000:
            _local_sources.clear()
        _local_sources[digest] = (time.monotonic() + LOCAL_CACHE_SECONDS, source)
    return source


@receiver(post_save, sender=Source)
@receiver(post_delete, sender=Source)
@receiver(post_save, sender=TrackingPlan)
@receiver(post_delete, sender=TrackingPlan)
def _local_sources_forget(**kwargs: Any) -> None:
    _local_sources.clear()


# --- Tracking plans ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _CompiledPlan:
    mode: str
    validators: dict[str, Any]


_compiled_plans: dict[tuple[int, str], _CompiledPlan] = {}


def _plan_cache_key(source_id: int) -> str:
    return f"ingest:plan:{source_id}"


def _schema_validator(schema: dict) -> Any:
    cls = validator_for(schema, default=validator_for({}))
    return cls(schema)


def _plan_state_load(source_id: int) -> tuple[str, dict, str]:
    """(mode, event_schemas, version) of a source's plan, ("", {}, "") without one."""
    plan = TrackingPlan.objects.filter(source_id=source_id).first()
    return (plan.mode, plan.event_schemas, plan.updated_at.isoformat()) if plan else ("", {}, "")


def _plan_for_source(source: Source) -> _CompiledPlan | None:
    state = getattr(source, "_ingest_plan", None)  # set by source_for_write_key_cached
    if state is None:
        state = cache.get(_plan_cache_key(source.pk))
        if state is None:
            state = _plan_state_load(source.pk)
            cache.set(_plan_cache_key(source.pk), state, PLAN_CACHE_SECONDS)
    mode, schemas, version = state
    if not mode:
        return None
    compiled = _compiled_plans.get((source.pk, version))
    if compiled is None:
        if len(_compiled_plans) > 1000:
            _compiled_plans.clear()
        compiled = _CompiledPlan(
            mode=mode,
            validators={name: _schema_validator(schema) for name, schema in schemas.items()},
        )
        _compiled_plans[(source.pk, version)] = compiled
    return compiled


def tracking_plan_save(
    *, source: Source, mode: str, event_schemas: dict[str, dict]
) -> TrackingPlan:
    """Create or replace the tracking plan of a source.

    `mode` is "flag" (keep violating events, with their violations recorded) or "quarantine"
    (quarantine violating and unplanned track events). `event_schemas` maps a track event name
    to the JSON Schema of its properties; each is checked against its meta-schema (draft 2020-12
    unless it names another with `$schema`). Raises TrackingPlanInvalidError saying which.
    """
    if mode not in TrackingPlan.Mode.values:
        raise TrackingPlanInvalidError(
            f"mode: must be one of {', '.join(TrackingPlan.Mode.values)}, not {mode!r}"
        )
    if not isinstance(event_schemas, dict):
        raise TrackingPlanInvalidError("event_schemas: must be an object of event name → schema")
    for name, schema in event_schemas.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise TrackingPlanInvalidError(
                f"event_schemas: {name!r} is not a valid event name (1 to 255 characters)"
            )
        if not isinstance(schema, dict):
            raise TrackingPlanInvalidError(f"event_schemas[{name!r}]: must be a JSON object")
        try:
            validator_for(schema, default=validator_for({})).check_schema(schema)
        except SchemaError as exc:
            where = "/".join(str(part) for part in exc.path) or "(root)"
            raise TrackingPlanInvalidError(
                f"event_schemas[{name!r}]: not a valid JSON Schema at {where}: {exc.message}"
            ) from exc
    with transaction.atomic():
        plan, _ = TrackingPlan.objects.update_or_create(
            source=source, defaults={"mode": mode, "event_schemas": event_schemas}
        )
        keys = [_plan_cache_key(source.pk), f"ingest:source:{source.write_key_hash}"]
        cache.delete_many(keys)
        transaction.on_commit(partial(cache.delete_many, keys))
    return plan


# --- Per-message preparation ---------------------------------------------------------------------

_OWN_COLUMNS = frozenset({"properties", "context"})
_ID_FIELDS = ("userId", "anonymousId", "messageId", "previousId", "groupId")
_TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
_MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
_MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_json_default)


def _id_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _strip_nul(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold U+0000: replace it with U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_strip_nul(k): _strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_nul(v) for v in value]
    return value


def _parse_time(value: Any) -> datetime | None:
    """A lenient timestamp parser: ISO 8601 (any precision, Z or offset, naive = UTC), RFC 2822
    and other common formats, or epoch seconds/milliseconds. Raises ValueError."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            parsed = datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError("out of range") from exc
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            try:
                parsed = dateutil_parser.parse(value)
            except (ValueError, OverflowError, TypeError) as exc:
                raise ValueError("not a date-time (ISO 8601 expected)") from exc
    else:
        raise ValueError("not a date-time")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        in_range = _MIN_TIME <= parsed <= _MAX_TIME
    except (OverflowError, ValueError) as exc:  # odd offsets near datetime.min/max
        raise ValueError("out of range") from exc
    if not in_range:
        raise ValueError("out of range (years 1900 to 2200)")
    return parsed


@lru_cache(maxsize=8192)
def _user_agent_is_bot(user_agent: str) -> bool:
    from user_agents import parse  # ua-parser's regexes load on first use

    return bool(parse(user_agent[:512]).is_bot)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _schema_errors(message_type: str, message: dict) -> list[dict[str, str]]:
    """Why a message fails its schema: [{"field": "event", "message": "..."}], most useful first."""
    errors = []
    for error in MESSAGE_VALIDATORS[message_type].iter_errors(message):
        path = ".".join(str(part) for part in error.absolute_path)
        custom = error.schema.get("errorMessage") if isinstance(error.schema, dict) else None
        if custom:
            field_name, _, text = custom.partition(": ")
        elif error.validator == "required":
            missing = [name for name in error.validator_value if name not in error.instance]
            field_name = ".".join(filter(None, [path, missing[0] if missing else ""]))
            text = f"required for {message_type}"
        elif error.validator == "type":
            expected = error.validator_value
            expected = " or ".join(expected) if isinstance(expected, list) else expected
            field_name, text = path, f"must be {expected}, not {_json_type(error.instance)}"
        elif error.validator == "maxLength":
            field_name, text = path, f"longer than {error.validator_value} characters"
        elif error.validator == "minLength":
            field_name, text = path, "must not be empty"
        elif error.validator == "enum":
            allowed = ", ".join(str(v) for v in error.validator_value)
            field_name, text = path, f"must be one of {allowed}"
        else:
            field_name, text = path, error.message
        errors.append({"field": field_name or "(message)", "message": text})
    errors.sort(key=lambda e: (e["field"] == "(message)", e["field"]))
    return errors or [{"field": "(message)", "message": "does not match the spec"}]


@dataclass(slots=True)
class _Row:
    message_id: str
    type: str
    event: str
    user_id: str
    anonymous_id: str
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    properties: Any
    traits: Any
    context: Any
    payload: bytes
    is_bot: bool
    violations: list
    message: dict[str, Any]


@dataclass(slots=True)
class _Rejected:
    index: int
    reason: str
    errors: list[dict[str, str]]
    message: Any


def _merged(value: Any, defaults: dict | None) -> Any:
    if not defaults:
        return value
    if value is None:
        return dict(defaults)
    if isinstance(value, dict):
        return {**defaults, **value}
    return value  # not an object: the schema reports it


def _prepare(
    index: int,
    raw: Any,
    *,
    batch_context: dict | None,
    batch_integrations: dict | None,
    batch_sent_at: Any,
    received_at: datetime,
    correct_clock_skew: bool,
) -> _Row | _Rejected:
    if not isinstance(raw, dict):
        return _Rejected(
            index,
            "not a JSON object",
            [{"field": "(message)", "message": f"must be an object, not {_json_type(raw)}"}],
            raw,
        )
    message = dict(raw)
    message.pop("writeKey", None)
    if batch_context:
        message["context"] = _merged(message.get("context"), batch_context)
    if batch_integrations:
        message["integrations"] = _merged(message.get("integrations"), batch_integrations)
    if batch_sent_at is not None and message.get("sentAt") is None:
        message["sentAt"] = batch_sent_at
    for name in _TIME_FIELDS:
        if isinstance(message.get(name), datetime):  # direct callers may pass datetimes
            message[name] = message[name].isoformat()

    message_type = message.get("type")
    fast_validator = FAST_VALIDATORS.get(message_type) if isinstance(message_type, str) else None
    if fast_validator is None:
        return _Rejected(
            index,
            "invalid message",
            [{"field": "type", "message": f"must be one of {', '.join(MESSAGE_TYPES)}"}],
            message,
        )
    try:
        fast_validator(message)
    except fastjsonschema.JsonSchemaException:
        return _Rejected(index, "invalid message", _schema_errors(message_type, message), message)

    for name in _ID_FIELDS:
        value = message.get(name)
        if value is not None and not isinstance(value, str):
            message[name] = _id_str(value)

    times: dict[str, datetime | None] = {}
    time_errors = []
    for name in _TIME_FIELDS:
        value = message.get(name)
        if value is None or value == "":
            times[name] = None
            continue
        try:
            times[name] = _parse_time(value)
        except ValueError as exc:
            time_errors.append({"field": name, "message": str(exc)})
    if time_errors:
        return _Rejected(index, "invalid message", time_errors, message)

    sent_at = times["sentAt"]
    if times["originalTimestamp"] is not None:
        original = times["originalTimestamp"]
        event_time = times["timestamp"]
        if event_time is None:
            event_time = received_at - (sent_at - original) if sent_at else original
    else:
        original = times["timestamp"]
        if original is None:
            event_time = received_at
        elif correct_clock_skew and sent_at is not None:
            event_time = received_at - (sent_at - original)
        else:
            event_time = original
    if not _MIN_TIME <= event_time <= _MAX_TIME:
        return _Rejected(
            index,
            "invalid message",
            [{"field": "sentAt", "message": "skew correction gives a time out of range"}],
            message,
        )

    if not message.get("messageId"):
        digest_source = {k: v for k, v in message.items() if k != "sentAt"}
        digest = hashlib.sha256(
            orjson.dumps(digest_source, default=_json_default, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        message["messageId"] = f"gen-{digest[:48]}"

    payload = _dumps(message)
    if b"\\u0000" in payload:
        message = _strip_nul(message)
        payload = _dumps(message)
    if len(payload) > settings.INGEST_MAX_MESSAGE_BYTES:
        return _Rejected(
            index,
            "message too large",
            [
                {
                    "field": "(message)",
                    "message": f"{len(payload)} bytes, over the "
                    f"{settings.INGEST_MAX_MESSAGE_BYTES // 1024} KB limit per message",
                }
            ],
            message,
        )

    context = message.get("context") or {}
    if message_type == "identify":
        context_traits = context.get("traits")
        traits = message.get("traits") or {}
        if isinstance(context_traits, dict) and context_traits:
            traits = {**context_traits, **traits}  # top-level traits win
    elif message_type == "group":
        traits = message.get("traits") or {}
    else:
        traits = {}
    if message_type == "track":
        event = message["event"]
    elif message_type in ("page", "screen"):
        event = message.get("name") or ""
    else:
        event = ""
    user_agent = context.get("userAgent")
    return _Row(
        message_id=message["messageId"],
        type=message_type,
        event=event,
        user_id=message.get("userId") or "",
        anonymous_id=message.get("anonymousId") or "",
        timestamp=event_time,
        original_timestamp=original,
        sent_at=sent_at,
        properties=message.get("properties") or {},
        traits=traits,
        context=context,
        # properties and context have their own columns: stored once (Event.message rejoins).
        payload=_dumps({k: v for k, v in message.items() if k not in _OWN_COLUMNS}),
        is_bot=_user_agent_is_bot(user_agent) if isinstance(user_agent, str) else False,
        violations=[],
        message=message,
    )


def _plan_violations(plan: _CompiledPlan, row: _Row) -> list[dict[str, str]]:
    validator = plan.validators.get(row.event)
    if validator is None:
        return [{"field": "event", "message": f"{row.event!r} is not in the tracking plan"}]
    violations = []
    for error in validator.iter_errors(row.properties):
        path = ".".join(["properties", *(str(part) for part in error.absolute_path)])
        violations.append({"field": path, "message": error.message[:500]})
    return violations


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


def _insert_postgresql(source: Source, rows: list[_Row], received_at: datetime) -> list[int]:
    """One statement for the whole request: the rows travel as one JSON array that PostgreSQL
    unpacks with json_to_recordset, so no per-row work is left in Python but building that
    array (in C, by orjson, embedding each payload already serialised)."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        extra_names, extra_literals = _extra_columns(cursor.cursor, received_at)
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
            default=_json_default,
        )
        cursor.execute(sql, [source.pk, received_at, document.decode()])
        return [event_id for (event_id,) in cursor.fetchall()]


def _insert_portable(source: Source, rows: list[_Row], received_at: datetime) -> list[int]:
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
                properties=orjson.loads(_dumps(row.properties)),
                traits=orjson.loads(_dumps(row.traits)),
                context=orjson.loads(_dumps(row.context)),
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


def _events_insert(source: Source, rows: list[_Row], received_at: datetime) -> list[int]:
    if connection.vendor == "postgresql":
        return _insert_postgresql(source, rows, received_at)
    return _insert_portable(source, rows, received_at)


def _dropped_count_add(source: Source, counts: dict[str, int], day: date) -> None:
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


def _quarantine_record(rejected: _Rejected, source: Source, received_at: datetime):
    message = rejected.message
    try:
        message = orjson.loads(_dumps(_strip_nul(message)))
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
        message_id=_id_str(message_id)[:255] if message_id is not None else "",
        event=str(event)[:255] if isinstance(event, str | int | float) else "",
        reason=rejected.reason,
        errors=_strip_nul(rejected.errors),
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


def _events_enqueue(event_ids: list[int]) -> None:
    _processing_queue.add(event_ids)


_last_event_at_touched: dict[int, float] = {}


def _source_touch(source: Source, received_at: datetime) -> None:
    """Source.last_event_at, written at most once a minute per process (a hot row otherwise)."""
    now = time.monotonic()
    if now - _last_event_at_touched.get(source.pk, -1e9) < LAST_EVENT_AT_EVERY_SECONDS:
        return
    _last_event_at_touched[source.pk] = now
    Source.objects.filter(pk=source.pk).update(last_event_at=received_at)


# --- The service ---------------------------------------------------------------------------------


def _rejection_text(rejected: _Rejected, field_prefix: str = "messages") -> str:
    parts = []
    for error in rejected.errors[:5]:
        where = f"{field_prefix}[{rejected.index}]"
        if error["field"] != "(message)":
            where += f".{error['field']}"
        parts.append(f"{where}: {error['message']}")
    return "; ".join(parts)


def ingest_messages(
    *,
    source: Source,
    messages: Iterable[Any],
    context: dict | None = None,
    integrations: dict | None = None,
    sent_at: Any = None,
    received_at: datetime | None = None,
    strict: bool = False,
    correct_clock_skew: bool = False,
) -> IngestResult:
    """Validate, filter, deduplicate and durably store messages of one source.

    `context`/`integrations`/`sent_at` are batch-level values merged into each message.
    With `strict` (a single-message request) an invalid message raises InvalidMessageError and
    nothing is stored; otherwise invalid messages are quarantined and the rest stored.
    `correct_clock_skew` marks messages from client (browser/mobile) SDKs whose `timestamp` is
    the device clock (see the module docstring). Returns counts and the new events' ids; the
    events are committed when this returns, and queued for processing after commit.
    """
    received_at = received_at or timezone.now()
    if context is not None and not isinstance(context, dict):
        raise InvalidMessageError(f"context: must be an object, not {_json_type(context)}")
    if integrations is not None and not isinstance(integrations, dict):
        raise InvalidMessageError(
            f"integrations: must be an object, not {_json_type(integrations)}"
        )
    rows: dict[str, _Row] = {}
    rejected: list[_Rejected] = []
    dropped: dict[str, int] = {}
    plan = None
    plan_loaded = False
    duplicates = 0
    for index, raw in enumerate(messages):
        prepared = _prepare(
            index,
            raw,
            batch_context=context,
            batch_integrations=integrations,
            batch_sent_at=sent_at,
            received_at=received_at,
            correct_clock_skew=correct_clock_skew,
        )
        if isinstance(prepared, _Rejected):
            if strict:
                raise InvalidMessageError(_rejection_text(prepared))
            rejected.append(prepared)
            continue
        if _INGEST_FILTERS:
            reason = _filters_reason(source, prepared.message)
            if reason:
                dropped[reason] = dropped.get(reason, 0) + 1
                continue
        if prepared.type == "track":
            if not plan_loaded:
                plan, plan_loaded = _plan_for_source(source), True
            if plan is not None:
                violations = _plan_violations(plan, prepared)
                if violations and plan.mode == TrackingPlan.Mode.QUARANTINE:
                    rejected.append(
                        _Rejected(
                            index,
                            "tracking plan: " + violations[0]["message"]
                            if violations[0]["field"] == "event"
                            else "tracking plan: properties do not match the plan",
                            violations,
                            prepared.message,
                        )
                    )
                    continue
                prepared.violations = violations
        if prepared.message_id in rows:
            duplicates += 1
            continue
        rows[prepared.message_id] = prepared

    event_ids: list[int] = []
    if rows or rejected or dropped:
        with transaction.atomic():
            if rows:
                event_ids = _events_insert(source, list(rows.values()), received_at)
            if rejected:
                QuarantinedMessage.objects.bulk_create(
                    [_quarantine_record(r, source, received_at) for r in rejected]
                )
            if dropped:
                _dropped_count_add(source, dropped, received_at.date())
            if event_ids:
                transaction.on_commit(partial(_events_enqueue, event_ids), robust=True)
        if rows:
            _source_touch(source, received_at)
    return IngestResult(
        accepted=len(event_ids),
        duplicates=duplicates + len(rows) - len(event_ids),
        quarantined=len(rejected),
        dropped=sum(dropped.values()),
        event_ids=event_ids,
    )


def _filters_reason(source: Source, message: dict[str, Any]) -> str | None:
    for ingest_filter in _INGEST_FILTERS:
        reason = ingest_filter(source, message)
        if reason:
            return str(reason)
    return None
