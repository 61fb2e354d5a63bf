"""Working the quarantine: replay a message once the tracking plan or the message is fixed, or
discard it. Every action writes an audit row with its actor.

A replay sends the quarantined message through `ingest_messages` again, with the time it was
first received (an event without its own timestamp keeps its time). Each message is claimed
with `select_for_update(skip_locked=True)` and leaves the quarantine in the transaction that
stores its event, so two staff replaying the same messages at once store each exactly once (and
ingestion's messageId dedup keeps a repeat out anyway). A message that fails again stays, with
the new reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from access.services import audit_record
from profiles.ingestion import ingest_messages
from profiles.models import QuarantinedMessage

REPLAY_CHUNK = 100


@dataclass
class ReplayResult:
    stored: int = 0
    duplicates: int = 0  # already stored (replayed before, or sent again meanwhile)
    dropped: int = 0  # suppressed or without consent: removed from the quarantine too
    still_failing: int = 0


def quarantine_replay(
    *, items: QuerySet[QuarantinedMessage], actor: Any, scope: dict[str, Any]
) -> ReplayResult:
    """Replay the quarantined messages of `items`; `scope` (ids or the filter, no PII) goes into
    the audit row."""
    result = ReplayResult()
    ids = list(items.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), REPLAY_CHUNK):
        chunk = ids[start : start + REPLAY_CHUNK]
        with transaction.atomic():
            claimed = (
                QuarantinedMessage.objects.select_for_update(skip_locked=True)
                .select_related("source")
                .filter(pk__in=chunk)
                .order_by("id")
            )
            for item in claimed:
                _replay_one(item, result)
    audit_record(
        actor=actor,
        action="quarantine.replay",
        resource="quarantine",
        details={**scope, "messages": len(ids), **result.__dict__},
    )
    return result


def _replay_one(item: QuarantinedMessage, result: ReplayResult) -> None:
    outcome = ingest_messages(
        source=item.source, messages=[item.message], received_at=item.received_at, quarantine=False
    )
    if outcome.invalid_at:
        item.reason = outcome.invalid_at[0][1][:2000]
        item.errors = []
        item.save(update_fields=["reason", "errors"])
        result.still_failing += 1
        return
    result.stored += outcome.accepted
    result.duplicates += outcome.duplicates
    result.dropped += outcome.dropped
    item.delete()


def quarantine_message_edit(
    *, item: QuarantinedMessage, message: dict[str, Any], actor: Any
) -> ReplayResult:
    """Replace a quarantined message by its fixed version and replay it."""
    item.message = message
    item.save(update_fields=["message"])
    audit_record(
        actor=actor,
        action="quarantine.edit",
        resource="quarantine",
        resource_id=item.pk,
        details={"fields": sorted(message)[:50]},
    )
    return quarantine_replay(
        items=QuarantinedMessage.objects.filter(pk=item.pk), actor=actor, scope={"id": item.pk}
    )


def quarantine_discard(
    *, items: QuarantinedMessage | QuerySet[QuarantinedMessage], actor: Any, scope: dict[str, Any]
) -> int:
    """Delete quarantined messages for good; how many."""
    if isinstance(items, QuarantinedMessage):
        items = QuarantinedMessage.objects.filter(pk=items.pk)
    with transaction.atomic():
        deleted, _ = items.delete()
        audit_record(
            actor=actor,
            action="quarantine.discard",
            resource="quarantine",
            details={**scope, "messages": deleted},
        )
    return deleted
