"""One message: merge batch values, validate, normalise ids and timestamps, build its row."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import fastjsonschema
import orjson
from dateutil import parser as dateutil_parser
from django.conf import settings

from profiles.ingestion.sources import CompiledPlan
from profiles.schemas import FAST_VALIDATORS, ID_MAX_LENGTH, MESSAGE_TYPES, MESSAGE_VALIDATORS

# --- Per-message preparation ---------------------------------------------------------------------

_OWN_COLUMNS = frozenset({"properties", "context"})
_ID_FIELDS = ("userId", "anonymousId", "messageId", "previousId", "groupId")
INEXACT_ID = 2.0**53
INEXACT_ID_MESSAGE = "a number this large loses digits: send the id as a string"
_TIME_FIELDS = ("timestamp", "originalTimestamp", "sentAt")
_CONTAINERS = (dict, list)  # a tuple: isinstance is slower with a `dict | list` union
MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
# Levels of objects and arrays in a message, itself included. No SDK sends more than a handful;
# the limit keeps orjson (which fails past 254) and our recursive helpers well within bounds.
MAX_NESTING = 64
# Recorded in Event.violations when the sender's time was ahead of ours and clamped.
CLOCK_CLAMPED_FLAG = {
    "field": "timestamp",
    "message": "ahead of receivedAt beyond the clock tolerance: clamped to receivedAt",
}


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=json_default)


def id_str(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def nesting_exceeds(value: dict | list, levels: int) -> bool:
    """Whether value has more than `levels` levels of objects and arrays. Iterative, so any
    depth the JSON parser accepts is measured without recursion."""
    level = [value]
    while level:
        if levels == 0:
            return True
        levels -= 1
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, _CONTAINERS)
        ]
    return False


def nesting_cut(value: Any, levels: int = MAX_NESTING) -> Any:
    """value with the objects and arrays below `levels` levels replaced by a note, so that a
    rejected message of any depth can still be serialised and stored."""
    if not isinstance(value, dict | list):
        return value
    if levels <= 0:
        return "(nested too deeply: cut)"
    if isinstance(value, dict):
        return {k: nesting_cut(v, levels - 1) for k, v in value.items()}
    return [nesting_cut(v, levels - 1) for v in value]


def strip_nul(value: Any) -> Any:
    """PostgreSQL text and jsonb cannot hold U+0000: replace it with U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
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
    elif parsed.tzinfo is not UTC:  # "Z", the usual, is UTC already
        try:
            # In UTC: PostgreSQL refuses offsets beyond +-15:59, ISO 8601 allows +-23:59:59.
            parsed = parsed.astimezone(UTC)
        except (OverflowError, ValueError) as exc:  # an offset past year 1 or 9999
            raise ValueError("out of range") from exc
    if not MIN_TIME <= parsed <= MAX_TIME:
        raise ValueError("out of range (years 1900 to 2200)")
    return parsed


@lru_cache(maxsize=8192)
def _user_agent_is_bot(user_agent: str) -> bool:
    from user_agents import parse  # ua-parser's regexes load on first use

    return bool(parse(user_agent[:512]).is_bot)


def user_agent_parser_load() -> None:
    """Compile the user-agent parser's regexes now (about half a second of CPU) rather than
    in the first request that carries a user agent."""
    _user_agent_is_bot("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0")


def json_type(value: Any) -> str:
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
            field_name, text = path, f"must be {expected}, not {json_type(error.instance)}"
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
class Row:
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
class Rejected:
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


def message_prepare(
    index: int,
    raw: Any,
    *,
    batch_context: dict | None,
    batch_integrations: dict | None,
    batch_sent_at: Any,
    received_at: datetime,
) -> Row | Rejected:
    """The row to store for one message of a request, or why it is refused: batch values
    merged in, checked against its type's JSON Schema, ids as text, timestamps parsed and the
    event time chosen (see `profiles.ingestion`), a messageId when it has none, and at most
    INGEST_MAX_MESSAGE_BYTES."""
    if not isinstance(raw, dict):
        return Rejected(
            index,
            "not a JSON object",
            [{"field": "(message)", "message": f"must be an object, not {json_type(raw)}"}],
            raw,
        )
    message = _batch_values_merged(
        raw, context=batch_context, integrations=batch_integrations, sent_at=batch_sent_at
    )
    errors = _shape_errors(message) or _ids_to_text(message)
    if errors:
        return Rejected(index, "invalid message", errors, message)
    times, errors = _times_parsed(message)
    if errors:
        return Rejected(index, "invalid message", errors, message)
    event_time, original, clamped = event_time_choose(
        times,
        received_at=received_at,
        tolerance=timedelta(seconds=settings.INGEST_CLOCK_TOLERANCE_SECONDS),
    )
    if not MIN_TIME <= event_time <= MAX_TIME:
        return Rejected(
            index,
            "invalid message",
            [{"field": "sentAt", "message": "skew correction gives a time out of range"}],
            message,
        )
    _message_id_ensure(message)
    message, payload = _serialised(message)
    if len(payload) > settings.INGEST_MAX_MESSAGE_BYTES:
        return Rejected(
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
    row = _row(message, event_time=event_time, original=original, sent_at=times["sentAt"])
    if clamped:
        row.violations.append(dict(CLOCK_CLAMPED_FLAG))
    return row


def _batch_values_merged(
    raw: dict[str, Any], *, context: dict | None, integrations: dict | None, sent_at: Any
) -> dict[str, Any]:
    """A copy of the message with the batch's values under its own (its keys win), without
    `writeKey` (a secret must not be copied into every event), times given as datetimes in
    ISO 8601."""
    message = dict(raw)
    message.pop("writeKey", None)
    if context:
        message["context"] = _merged(message.get("context"), context)
    if integrations:
        message["integrations"] = _merged(message.get("integrations"), integrations)
    if sent_at is not None and message.get("sentAt") is None:
        message["sentAt"] = sent_at
    for name in _TIME_FIELDS:
        if isinstance(message.get(name), datetime):  # direct callers may pass datetimes
            message[name] = message[name].isoformat()
    return message


def _shape_errors(message: dict[str, Any]) -> list[dict[str, str]]:
    """Why the message is not of a known type with that type's shape; [] when it is."""
    if nesting_exceeds(message, MAX_NESTING):
        deep = next(
            name
            for name, value in message.items()
            if isinstance(value, dict | list) and nesting_exceeds(value, MAX_NESTING - 1)
        )
        return [{"field": deep, "message": f"nested too deeply (over {MAX_NESTING} levels)"}]
    message_type = message.get("type")
    if not isinstance(message_type, str) or message_type not in FAST_VALIDATORS:
        return [{"field": "type", "message": f"must be one of {', '.join(MESSAGE_TYPES)}"}]
    try:
        FAST_VALIDATORS[message_type](message)
    except fastjsonschema.JsonSchemaException:
        return _schema_errors(message_type, message)
    return []


def _ids_to_text(message: dict[str, Any]) -> list[dict[str, str]]:
    """Turn ids sent as numbers into text, in place; the ids that are then too long."""
    errors = []
    for name in _ID_FIELDS:
        value = message.get(name)
        if value is not None and not isinstance(value, str):
            message[name] = id_str(value)
            # The schema's maxLength only applies to strings; 1e300 becomes 301 digits.
            if len(message[name]) > ID_MAX_LENGTH:
                errors.append({"field": name, "message": f"longer than {ID_MAX_LENGTH} characters"})
            elif isinstance(value, float) and abs(value) >= INEXACT_ID:
                # The body's parser reads an integer beyond 64 bits as a float: its digits would
                # change silently (JSON numbers are exact to 2^53 only, RFC 8259 section 6).
                errors.append({"field": name, "message": INEXACT_ID_MESSAGE})
    return errors


def _times_parsed(
    message: dict[str, Any],
) -> tuple[dict[str, datetime | None], list[dict[str, str]]]:
    """The message's timestamps by field name (None when absent), and those that do not parse."""
    times: dict[str, datetime | None] = {}
    errors = []
    for name in _TIME_FIELDS:
        value = message.get(name)
        if value is None or value == "":
            times[name] = None
            continue
        try:
            times[name] = _parse_time(value)
        except ValueError as exc:
            errors.append({"field": name, "message": str(exc)})
    return times, errors


def event_time_choose(
    times: dict[str, datetime | None], *, received_at: datetime, tolerance: timedelta
) -> tuple[datetime, datetime | None, bool]:
    """(event time, original timestamp, whether it was clamped) of a message's parsed times.

    The sender's time is its `timestamp` (or RudderStack's `originalTimestamp`), kept as the
    original. When `sentAt` tells that the sender's clock differs from ours by more than
    `tolerance`, the event time is corrected by that drift, `receivedAt - (sentAt - timestamp)`
    (as PostHog and Sentry's relay do), whatever the route: a server's clock drifts too. A
    time still more than `tolerance` ahead of `receivedAt` (no `sentAt`, or a timestamp after
    it) is clamped to `receivedAt`: an event is never stored in the future. A past time sent
    now (a historical import) is kept as it is.
    """
    sent_at = times["sentAt"]
    original = times["originalTimestamp"] or times["timestamp"]
    sender_time = times["timestamp"] or original
    if sender_time is None:
        return received_at, None, False
    event_time = sender_time
    if sent_at is not None and abs(sent_at - received_at) > tolerance:
        event_time = received_at - (sent_at - sender_time)
    if event_time - received_at > tolerance:
        return received_at, original, True
    return event_time, original, False


def _message_id_ensure(message: dict[str, Any]) -> None:
    """Give a message without `messageId` a digest of its content (minus `sentAt`), so that a
    retried identical request is still deduplicated."""
    if not message.get("messageId"):
        digest_source = {k: v for k, v in message.items() if k != "sentAt"}
        digest = hashlib.sha256(
            orjson.dumps(digest_source, default=json_default, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        message["messageId"] = f"gen-{digest[:48]}"


def _serialised(message: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The message as JSON, with any U+0000 replaced first (PostgreSQL cannot store it)."""
    payload = dumps(message)
    if b"\\u0000" in payload:
        message = strip_nul(message)
        payload = dumps(message)
    return message, payload


def _row(
    message: dict[str, Any],
    *,
    event_time: datetime,
    original: datetime | None,
    sent_at: datetime | None,
) -> Row:
    message_type = message["type"]
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
    return Row(
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
        payload=dumps({k: v for k, v in message.items() if k not in _OWN_COLUMNS}),
        is_bot=_user_agent_is_bot(user_agent) if isinstance(user_agent, str) else False,
        violations=[],
        message=message,
    )


def plan_violations(plan: CompiledPlan, row: Row) -> list[dict[str, str]]:
    validator = plan.validators.get(row.event)
    if validator is None:
        return [{"field": "event", "message": f"{row.event!r} is not in the tracking plan"}]
    violations = []
    for error in validator.iter_errors(row.properties):
        path = ".".join(["properties", *(str(part) for part in error.absolute_path)])
        violations.append({"field": path, "message": error.message[:500]})
    return violations
