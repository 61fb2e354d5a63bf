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
5. all events of the request are inserted (COPY for many, else one INSERT statement; a single
   event shares its statement and commit with those of concurrent requests of the process),
   ignoring (source, messageId) duplicates, in one transaction with the quarantined rows (one
   transaction of their own when there are none); after commit their ids are queued
   to `events_process_task` in chunks of settings.INGEST_PROCESS_CHUNK.

Timestamps (all four are kept; `messages.event_time_choose` decides):
- `originalTimestamp` is the sender's clock when the call was made: the message's
  `originalTimestamp` (RudderStack) or else its `timestamp` (Segment libraries).
- `timestamp`, the event time used everywhere downstream, is the sender's time; when `sentAt`
  shows the sender's clock off ours by more than INGEST_CLOCK_TOLERANCE_SECONDS, on any route,
  it is corrected by that drift: `receivedAt - (sentAt - timestamp)`. A time still ahead of
  `receivedAt` beyond the tolerance is clamped to `receivedAt` and flagged in the event's
  `violations`. A past time sent now (historical imports) is kept.
- Without any of them, the event time is `receivedAt`.

A message without `messageId` gets a deterministic one, a digest of its content (minus
`sentAt`), so a retried identical request is still deduplicated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from access.metrics import ingest_outcome_record
from access.models import Source
from profiles.ingestion.batching import events_enqueue
from profiles.ingestion.errors import (
    IngestError,
    InvalidMessageError,
    InvalidWriteKeyError,
    MalformedBodyError,
    PayloadTooLargeError,
    StorageUnavailableError,
    TrackingPlanInvalidError,
)
from profiles.ingestion.messages import (
    Rejected,
    Row,
    json_type,
    message_prepare,
    plan_violations,
    user_agent_parser_load,
)
from profiles.ingestion.parsing import ingest_body_parse
from profiles.ingestion.sources import (
    CompiledPlan,
    plan_for_source,
    source_for_write_key_cached,
    tracking_plan_save,
)
from profiles.ingestion.storage import (
    dropped_count_add,
    events_insert,
    events_insert_commits,
    quarantine_record,
    source_touch,
)
from profiles.models import QuarantinedMessage, TrackingPlan

logger = logging.getLogger(__name__)

# --- Results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    dropped: int = 0
    event_ids: list[int] = field(default_factory=list)
    # (index in the request, what is wrong and where) of each invalid message when they are
    # not quarantined, and (index, filter's reason) of each dropped one, in request order.
    invalid_at: list[tuple[int, str]] = field(default_factory=list)
    dropped_at: list[tuple[int, str]] = field(default_factory=list)


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


# --- The service ---------------------------------------------------------------------------------


def _rejection_text(rejected: Rejected, field_prefix: str | None = "messages") -> str:
    """What is wrong and where: `messages[3].properties.price: must be number`, or without a
    prefix `properties.price: must be number`."""
    parts = []
    for error in rejected.errors[:5]:
        where = [f"{field_prefix}[{rejected.index}]"] if field_prefix else []
        if error["field"] != "(message)":
            where.append(error["field"])
        parts.append(f"{'.'.join(where) or 'message'}: {error['message']}")
    return "; ".join(parts) or rejected.reason


def ingest_messages(
    *,
    source: Source,
    messages: Iterable[Any],
    context: dict | None = None,
    integrations: dict | None = None,
    sent_at: Any = None,
    received_at: datetime | None = None,
    strict: bool = False,
    quarantine: bool = True,
) -> IngestResult:
    """Validate, filter, deduplicate and durably store messages of one source.

    `context`/`integrations`/`sent_at` are batch-level values merged into each message.
    With `strict` (a single-message request) an invalid message raises InvalidMessageError and
    nothing is stored; otherwise invalid messages are quarantined and the rest stored.
    Without `quarantine` (a bulk import, which reports them to its uploader instead) invalid
    messages are not kept. Returns counts, the new events' ids and which messages were
    refused; the events are committed when this returns, and queued for processing after
    commit.
    """
    received_at = received_at or timezone.now()
    if context is not None and not isinstance(context, dict):
        raise InvalidMessageError(f"context: must be an object, not {json_type(context)}")
    if integrations is not None and not isinstance(integrations, dict):
        raise InvalidMessageError(f"integrations: must be an object, not {json_type(integrations)}")
    prepare = partial(
        message_prepare,
        batch_context=context,
        batch_integrations=integrations,
        batch_sent_at=sent_at,
        received_at=received_at,
    )
    outcome = _messages_sort(source=source, messages=messages, prepare=prepare, strict=strict)
    # Reported to the caller instead of quarantined (imports, replays); the API's batches,
    # which quarantine, never read them, so they are not spelled out for every request.
    invalid_at: list[tuple[int, str]] = []
    if not quarantine:
        invalid_at = [(r.index, _rejection_text(r, field_prefix=None)) for r in outcome.rejected]
        outcome.rejected = []
    event_ids = _outcome_store_retrying(source=source, outcome=outcome, received_at=received_at)
    if outcome.rows:
        source_touch(source, received_at)
    result = IngestResult(
        accepted=len(event_ids),
        duplicates=outcome.duplicates + len(outcome.rows) - len(event_ids),
        quarantined=len(outcome.rejected),
        dropped=sum(outcome.dropped.values()),
        event_ids=event_ids,
        invalid_at=invalid_at,
        dropped_at=outcome.dropped_at,
    )
    _outcome_count(outcome, result)
    return result


def _outcome_count(outcome: _Outcome, result: IngestResult) -> None:
    ingest_outcome_record(outcome="accepted", count=result.accepted)
    ingest_outcome_record(outcome="duplicate", count=result.duplicates)
    for rejected in outcome.rejected:
        # "tracking plan: 'X' is not ..." names the event: the label keeps the kind only.
        ingest_outcome_record(outcome="quarantined", reason=rejected.reason.split(":")[0])
    for reason, count in outcome.dropped.items():
        ingest_outcome_record(outcome="dropped", reason=reason, count=count)


@dataclass
class _Outcome:
    """What happens to each message of a request: stored, quarantined, dropped or a repeat."""

    rows: dict[str, Row] = field(default_factory=dict)  # to store, by messageId
    rejected: list[Rejected] = field(default_factory=list)  # to quarantine
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> how many
    dropped_at: list[tuple[int, str]] = field(default_factory=list)  # (index, reason)
    duplicates: int = 0  # repeats of a messageId earlier in the request


def _messages_sort(
    *,
    source: Source,
    messages: Iterable[Any],
    prepare: Callable[[int, Any], Row | Rejected],
    strict: bool,
) -> _Outcome:
    """Prepare each message and decide its outcome (steps 1 to 4 of the module docstring)."""
    outcome = _Outcome()
    plan: CompiledPlan | None = None
    plan_loaded = False
    for index, raw in enumerate(messages):
        prepared = prepare(index, raw)
        if isinstance(prepared, Rejected):
            if strict:
                raise InvalidMessageError(_rejection_text(prepared))
            outcome.rejected.append(prepared)
            continue
        if _INGEST_FILTERS:
            reason = _filters_reason(source, prepared.message)
            if reason:
                outcome.dropped[reason] = outcome.dropped.get(reason, 0) + 1
                outcome.dropped_at.append((index, reason))
                continue
        if prepared.type == "track":
            if not plan_loaded:
                plan, plan_loaded = plan_for_source(source), True
            if plan is not None:
                refused = _plan_check(plan, prepared, index)
                if refused is not None:
                    outcome.rejected.append(refused)
                    continue
        if prepared.message_id in outcome.rows:
            outcome.duplicates += 1
            continue
        outcome.rows[prepared.message_id] = prepared
    return outcome


def _plan_check(plan: CompiledPlan, row: Row, index: int) -> Rejected | None:
    """Check a track event against its source's tracking plan: in "quarantine" mode a violation
    refuses it, in "flag" mode the violations are recorded on the row."""
    violations = plan_violations(plan, row)
    if violations and plan.mode == TrackingPlan.Mode.QUARANTINE:
        reason = (
            "tracking plan: " + violations[0]["message"]
            if violations[0]["field"] == "event"
            else "tracking plan: properties do not match the plan"
        )
        return Rejected(index, reason, violations, row.message)
    row.violations += violations
    return None


def _outcome_store(*, source: Source, outcome: _Outcome, received_at: datetime) -> list[int]:
    """Store the request's rows, quarantined messages and drop counts in one transaction (step
    5 of the module docstring); the new events' ids, queued for processing after commit."""
    event_ids: list[int] = []
    rows = list(outcome.rows.values())
    if rows and not outcome.rejected and not outcome.dropped and events_insert_commits():
        # The common case: the insert commits on its own (COPY in its transaction, or one
        # statement in autocommit), so processing can be queued as soon as it returns.
        event_ids = events_insert(source, rows, received_at)
        if event_ids:
            _events_enqueue_safely(event_ids)
    elif rows or outcome.rejected or outcome.dropped:
        with transaction.atomic():
            if rows:
                event_ids = events_insert(source, rows, received_at)
            if outcome.rejected:
                QuarantinedMessage.objects.bulk_create(
                    [quarantine_record(r, source, received_at) for r in outcome.rejected]
                )
            if outcome.dropped:
                dropped_count_add(source, outcome.dropped, received_at.date())
            if event_ids:
                transaction.on_commit(partial(_events_enqueue_safely, event_ids))
    return event_ids


def _outcome_store_retrying(
    *, source: Source, outcome: _Outcome, received_at: datetime
) -> list[int]:
    """`_outcome_store`, retried once on a new connection when the database connection fails
    (one killed or dropped since its health check): an SDK would otherwise get an error for a
    request that a second attempt stores. Safe if the first attempt did commit: events are
    stored once per messageId, and those the retry finds stored are left to the sweep. Inside
    a caller's transaction nothing is retried (that transaction is lost). A second failure is
    an outage: StorageUnavailableError (503, SDKs retry)."""
    try:
        return _outcome_store(source=source, outcome=outcome, received_at=received_at)
    except (OperationalError, InterfaceError) as first:
        if connection.in_atomic_block:
            raise
        logger.warning("ingestion write failed (%s), retrying on a new connection", type(first))
        connection.close()
    try:
        return _outcome_store(source=source, outcome=outcome, received_at=received_at)
    except (OperationalError, InterfaceError) as exc:
        raise StorageUnavailableError("the database is unavailable; retry later") from exc


def ingestion_warm_up() -> None:
    """Load what ingestion otherwise loads on its first request (the user-agent parser's
    regexes, the Redis client): done per web process before it serves, since a first request
    holding the GIL for a second stalls every other request of that process."""
    import redis  # noqa: F401 - the cache and broker clients import it on first use

    user_agent_parser_load()


def _events_enqueue_safely(event_ids: list[int]) -> None:
    """Queue processing; if the broker is down the events (already committed) are still
    processed later by the beat sweep, so the request must not fail."""
    try:
        events_enqueue(event_ids)
    except Exception:
        logger.exception("could not queue %s events for processing", len(event_ids))


def _filters_reason(source: Source, message: dict[str, Any]) -> str | None:
    for ingest_filter in _INGEST_FILTERS:
        reason = ingest_filter(source, message)
        if reason:
            return str(reason)
    return None


__all__ = [
    "IngestError",
    "IngestResult",
    "InvalidMessageError",
    "InvalidWriteKeyError",
    "MalformedBodyError",
    "PayloadTooLargeError",
    "StorageUnavailableError",
    "TrackingPlanInvalidError",
    "ingest_body_parse",
    "ingest_messages",
    "ingestion_warm_up",
    "register_ingest_filter",
    "source_for_write_key_cached",
    "tracking_plan_save",
    "unregister_ingest_filter",
]
