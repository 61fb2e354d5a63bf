"""Consent records: decisions recorded by staff and systems, signals read from events, and the
pipeline stage that keeps only what consent allows."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.utils import timezone

from access.services import AuditItem, audit_record, audit_record_many
from consent import selectors
from consent.context_signals import category_preferences, purposes_from
from consent.models import ConsentRecord, ConsentSource, Purpose
from consent.services.suppression import suppression_cache
from profiles.models import Event, Profile
from profiles.services import events_delete


def consent_record(
    *,
    profile: Profile,
    purpose: str,
    granted: bool,
    source: str,
    policy_version: str = "",
    occurred_at: datetime | None = None,
    evidence: dict[str, Any] | None = None,
    actor: Any = None,
    ip: str | None = None,
) -> ConsentRecord:
    """Append one decision to the profile's consent history; it takes effect at once."""
    if source not in ConsentSource.values:
        raise ValueError(f"source must be one of {', '.join(ConsentSource.values)}")
    purpose_obj = selectors.purpose_get(code=purpose)
    record = ConsentRecord.objects.create(
        profile=profile,
        purpose=purpose_obj,
        granted=granted,
        source=source,
        policy_version=policy_version[:64],
        occurred_at=occurred_at or timezone.now(),
        evidence=evidence or {},
    )
    audit_record(
        actor=actor,
        action="consent.grant" if granted else "consent.withdraw",
        resource="consents",
        resource_id=record.pk,
        profile_id=profile.pk,
        ip=ip,
        details={"purpose": purpose, "source": source, "policy_version": policy_version[:64]},
    )
    return record


def _signals_apply(
    resolved: list[tuple[Profile, list[Event]]],
    *,
    purposes: dict[str, Purpose],
    latest: selectors.ConsentLatest,
) -> list[ConsentRecord]:
    """Record what the chunk's events say about consent, where it differs from the profile's
    current state (a banner re-sending the same choice adds nothing): the mapping is read
    once, and the events of each profile are applied in event-time order. `latest` is updated
    with what was recorded; the records are returned, for their audit rows."""
    found = [
        (profile, event, prefs)
        for profile, events in resolved
        for event in sorted(events, key=lambda e: (e.timestamp, e.pk or 0))
        if (prefs := category_preferences(event.context))
    ]
    if not found:
        return []
    mapping = selectors.category_mapping()
    records: list[ConsentRecord] = []
    for profile, event, prefs in found:
        for code, granted in sorted(purposes_from(prefs, mapping).items()):
            purpose = purposes.get(code)
            if purpose is None:
                continue
            current = latest.get((profile.pk, purpose.pk))
            if current is not None:
                if current[0] == granted:
                    continue
                if event.timestamp and current[1] > event.timestamp:
                    continue  # a late event must not undo a newer decision
            occurred = event.timestamp or timezone.now()
            latest[profile.pk, purpose.pk] = (granted, occurred)
            records.append(
                ConsentRecord(
                    profile=profile,
                    purpose=purpose,
                    granted=granted,
                    source=ConsentSource.SDK,
                    occurred_at=occurred,
                    evidence={
                        "event_id": event.pk,
                        "message_id": event.message_id[:255],
                        "categories": dict(sorted(prefs.items())[:50]),
                    },
                )
            )
    if records:
        ConsentRecord.objects.bulk_create(records)
    return records


def consent_signals_audit(*, records: Sequence[ConsentRecord]) -> None:
    """The audit rows of consent signals recorded from events (the system's, one per record).
    The pipeline writes them as its chunk's last statement: the audit chain's lock
    (access.models) is held from an audit row's insert until commit, so written early they
    would make every worker's chunk wait for the others'."""
    for granted, action in ((True, "consent.grant"), (False, "consent.withdraw")):
        items = [
            AuditItem(
                resource_id=r.pk or "",
                profile_id=r.profile.pk,
                details={"purpose": r.purpose.code, "source": ConsentSource.SDK},
            )
            for r in records
            if r.granted == granted
        ]
        if items:
            audit_record_many(actor=None, action=action, resource="consents", items=items)


_MINIMAL_EVENT_FIELDS = ("type", "event", "userId", "anonymousId", "messageId", "timestamp")
# Who the person is stays even without analytics consent: it is what their rights attach to.
_IDENTITY_TYPES = ("identify", "alias", "group")


def _events_strip(events: list[Event]) -> None:
    # The pipeline loads events with their payload deferred: read the payloads in one query,
    # not one per event (that was a third of the processing time for people without consent).
    deferred = [e.pk for e in events if e.pk and "payload" in e.get_deferred_fields()]
    payloads = (
        dict(Event.objects.filter(pk__in=deferred).values_list("pk", "payload")) if deferred else {}
    )
    for event in events:
        # A deferred field is absent from the instance's __dict__ (reading it would query).
        payload = event.__dict__.get("payload", payloads.get(event.pk))
        payload = payload if isinstance(payload, dict) else {}
        event.properties = {}
        event.context = {}
        event.payload = {k: payload[k] for k in _MINIMAL_EVENT_FIELDS if k in payload}


class ConsentFiltered(NamedTuple):
    """What the consent stage keeps: each profile with the events it may process (in the
    order given), and the events stripped in memory, which the caller saves."""

    resolved: list[tuple[Profile, list[Event]]]
    stripped: list[Event]


def consent_filter_resolved(
    *,
    resolved: Sequence[tuple[Profile, list[Event]]],
    audit_later: list[ConsentRecord] | None = None,
) -> ConsentFiltered:
    """Pipeline stage, per chunk: record the consent signals the events carry, then keep what
    consent allows. The signals' audit rows are written here, or, given `audit_later`, their
    records are added to it for the caller to audit last (consent_signals_audit). A suppressed
    profile's events are deleted (they slipped in before the suppression reached ingestion);
    without `analytics` the configured policy (CONSENT_WITHOUT_ANALYTICS) strips or drops
    behavioural events. A handful of queries per chunk, whatever its size.

    Stripped events are rewritten in memory only: the caller saves them (the pipeline does so
    with its processing update, one write per event row).
    """
    resolved = [(profile, list(events)) for profile, events in resolved]
    if not any(events for _, events in resolved):
        return ConsentFiltered(resolved, [])
    ids = {profile.pk for profile, _ in resolved}
    purposes = {p.code: p for p in selectors.purposes_all()}
    # The same history the gate reads (consent_allows), for the whole chunk in one query.
    latest = selectors.consent_latest(profile_ids=ids)
    signals = _signals_apply(resolved, purposes=purposes, latest=latest)
    if audit_later is None:
        consent_signals_audit(records=signals)
    else:
        audit_later.extend(signals)
    suppressed = suppression_cache.current().profile_ids & ids
    analytics = purposes.get("analytics") or selectors.purpose_get(code="analytics")
    allowed = {
        pid for pid in ids if latest.get((pid, analytics.pk), (analytics.granted_by_default,))[0]
    }
    policy = settings.CONSENT_WITHOUT_ANALYTICS
    doomed: list[int] = []
    rewritten: list[Event] = []
    kept: list[tuple[Profile, list[Event]]] = []
    for profile, events in resolved:
        if profile.pk in suppressed:
            doomed += [e.pk for e in events if e.pk]
            kept.append((profile, []))
            continue
        if profile.pk in allowed or policy == "keep":
            kept.append((profile, events))
            continue
        behavioural = [e for e in events if e.type not in _IDENTITY_TYPES]
        if policy == "drop":
            doomed += [e.pk for e in behavioural if e.pk]
            kept.append((profile, [e for e in events if e.type in _IDENTITY_TYPES]))
            continue
        rewritten += behavioural
        kept.append((profile, events))
    events_delete(ids=doomed)
    _events_strip(rewritten)
    return ConsentFiltered(kept, rewritten)
