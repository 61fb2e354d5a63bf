"""Writes: consent records, signals from events, suppression, privacy requests, retention, audit.

Every change that matters writes an audit row (`audit_record`) naming profiles by id only.
Privacy requests run through `privacy_request_process`, which the Celery task, the beat
schedule and `manage.py process_privacy_requests` all call.
"""

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from access.models import ApiKey, AuditLog
from access.services import audit_record
from consent import access, erasure, selectors
from consent.context_signals import category_preferences, purposes_from
from consent.hashing import SUBJECT_KINDS, identifier_hash, identifier_normalize
from consent.models import (
    ConsentRecord,
    ConsentSource,
    PrivacyRequest,
    PrivacyRequestComment,
    Regulation,
    RegulationType,
    RequestStatus,
    RetentionPolicy,
    Suppression,
)
from profiles.models import Event, Profile
from profiles.services import events_content_save

logger = logging.getLogger(__name__)


class PrivacyRequestError(ValueError):
    """A request that cannot be created or moved as asked (the message says why)."""


# --- consent -------------------------------------------------------------------------------


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


def consent_apply_signals(*, profile: Profile, event: Event) -> list[ConsentRecord]:
    """Record what one event's context says about consent, where it differs from the
    profile's current state (a banner re-sending the same choice adds nothing)."""
    return _signals_apply([(profile, [event])])


Latest = dict[tuple[int, int], tuple[bool, datetime]]


def _latest_records(profile_ids: set[int]) -> Latest:
    """(profile id, purpose id) -> (granted, occurred_at) of the latest record, one query."""
    latest: Latest = {}
    if not profile_ids:
        return latest
    if connection.vendor == "postgresql":
        # One row per (profile, purpose), and the ids as one array parameter: this runs for
        # every chunk the pipeline processes.
        table = ConsentRecord._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT ON (profile_id, purpose_id) profile_id, purpose_id, granted, "  # noqa: S608
                f"occurred_at FROM {table} WHERE profile_id = ANY(%s) "
                "ORDER BY profile_id, purpose_id, occurred_at DESC, id DESC",
                [sorted(profile_ids)],
            )
            rows = cursor.fetchall()
    else:
        rows = list(
            ConsentRecord.objects.filter(profile_id__in=profile_ids)
            .order_by("profile_id", "purpose_id", "-occurred_at", "-id")
            .values_list("profile_id", "purpose_id", "granted", "occurred_at")
        )
    for pid, purpose_id, granted, occurred in rows:
        latest.setdefault((pid, purpose_id), (granted, occurred))
    return latest


def _signals_apply(
    resolved: list[tuple[Profile, list[Event]]],
    *,
    purposes: dict[str, Any] | None = None,
    latest: Latest | None = None,
) -> list[ConsentRecord]:
    """Consent signals of a whole chunk in a few queries: the mapping and the current state
    are read once, and the events of each profile are applied in event-time order. `latest`
    (when given) is updated with what was recorded."""
    found = [
        (profile, event, prefs)
        for profile, events in resolved
        for event in sorted(events, key=lambda e: (e.timestamp, e.pk or 0))
        if (prefs := category_preferences(event.context))
    ]
    if not found:
        return []
    mapping = selectors.category_mapping()
    if purposes is None:
        purposes = {p.code: p for p in selectors.purposes_all()}
    if latest is None:
        latest = _latest_records({profile.pk for profile, _, _ in found})
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
    if not records:
        return []
    ConsentRecord.objects.bulk_create(records)
    AuditLog.objects.bulk_create(
        AuditLog(
            actor_label="system",
            action="consent.grant" if r.granted else "consent.withdraw",
            resource="consents",
            resource_id=str(r.pk or ""),
            profile_id=r.profile.pk,
            details={"purpose": r.purpose.code, "source": ConsentSource.SDK},
        )
        for r in records
    )
    return records


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


def consent_allows_processing(*, profile: Profile, event: Event) -> bool:
    """Gate for one event. False: stop (the subject is suppressed, or has no `analytics`
    consent under the "drop" policy). Without `analytics` under "minimal", the event is
    stripped to type, name, ids and time (saved) and processing goes on."""
    kept = consent_filter_events(profile=profile, events=[event], apply_signals=False)
    return bool(kept)


def consent_filter_events(
    *, profile: Profile, events: list[Event], apply_signals: bool = True
) -> list[Event]:
    """`consent_filter_resolved` for one profile's events."""
    return consent_filter_resolved(resolved=[(profile, events)], apply_signals=apply_signals)[0][1]


def consent_filter_resolved(
    *,
    resolved: list[tuple[Profile, list[Event]]],
    apply_signals: bool = True,
    stripped: list[Event] | None = None,
) -> list[tuple[Profile, list[Event]]]:
    """Pipeline stage, per chunk: record the consent signals the events carry, then keep what
    consent allows. A suppressed profile's events are deleted (they slipped in before the
    suppression reached ingestion); without `analytics` the configured policy
    (CONSENT_WITHOUT_ANALYTICS) strips or drops behavioural events. A handful of queries per
    chunk, whatever its size.

    Stripped events are saved here, unless `stripped` is given: they are then added to it for
    the caller to save (the pipeline saves them with its processing update, one write per
    event row).
    """
    resolved = [(profile, list(events)) for profile, events in resolved]
    if not any(events for _, events in resolved):
        return resolved
    ids = {profile.pk for profile, _ in resolved}
    purposes = {p.code: p for p in selectors.purposes_all()}
    # The same history the gate reads (consent_allows), for the whole chunk in one query.
    latest = _latest_records(ids)
    if apply_signals:
        _signals_apply(resolved, purposes=purposes, latest=latest)
    suppressed = _suppressed.current().profile_ids & ids
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
    if doomed:
        Event.objects.filter(pk__in=doomed).delete()
    _events_strip(rewritten)
    if stripped is None:
        events_content_save(events=[e for e in rewritten if e.pk])
    else:
        stripped.extend(rewritten)
    return kept


# --- suppression ---------------------------------------------------------------------------

_VERSION_KEY = "consent:suppression-version"


class _Suppressed(NamedTuple):
    hashes: frozenset[str]
    kinds: frozenset[str]
    profile_ids: frozenset[int]


class _SuppressionSet:
    """The suppressed identifiers' hashes (and profile ids), held per process and reloaded
    when another process bumps the version in the shared cache (checked at most every
    SUPPRESSION_REFRESH_SECONDS). Ingestion consults it for every message and the pipeline
    for every chunk, so the fast path is a set lookup; the process that creates or removes
    a suppression sees it at once, others within the refresh interval."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = _Suppressed(frozenset(), frozenset(), frozenset())
        self.version: str | None = None
        self.checked = 0.0

    def invalidate(self) -> None:
        with self.lock:
            self.version = None
            self.checked = 0.0

    def current(self) -> _Suppressed:
        now = time.monotonic()
        if self.version is not None and now - self.checked < settings.SUPPRESSION_REFRESH_SECONDS:
            return self.state
        with self.lock:
            shared = cache.get(_VERSION_KEY)
            if shared is None or shared != self.version:
                rows = list(
                    Suppression.objects.values_list("identifier_hash", "kind", "profile_id")
                )
                self.state = _Suppressed(
                    frozenset(h for h, _, _ in rows),
                    frozenset(k for _, k, _ in rows),
                    frozenset(p for _, _, p in rows if p is not None),
                )
                if shared is None:
                    shared = uuid.uuid4().hex
                    cache.add(_VERSION_KEY, shared, timeout=None)
                self.version = shared
            self.checked = now
            return self.state


_suppressed = _SuppressionSet()


def _suppression_changed() -> None:
    _suppressed.invalidate()
    cache.set(_VERSION_KEY, uuid.uuid4().hex, timeout=None)
    # Other processes must reload after the rows are visible to them.
    transaction.on_commit(lambda: cache.set(_VERSION_KEY, uuid.uuid4().hex, timeout=None))


@lru_cache(maxsize=65536)
def _message_identifier_hash(kind: str, value: str) -> str | None:
    """Normalise and hash an identifier as sent; cached, since the same people keep sending."""
    try:
        return identifier_hash(kind, identifier_normalize(kind, value))
    except ValueError:
        return None


def suppression_ingest_filter(source: Any, message: Any) -> str | None:
    """Ingestion filter: "suppressed" when the message names a suppressed subject (the caller
    drops it, counts it, stores nothing), else None."""
    hashes, kinds, _ = _suppressed.current()
    if not hashes or not isinstance(message, Mapping):
        return None
    candidates: list[tuple[str, Any]] = []
    if "user_id" in kinds and message.get("userId"):
        candidates.append(("user_id", message["userId"]))
    if "anonymous_id" in kinds and message.get("anonymousId"):
        candidates.append(("anonymous_id", message["anonymousId"]))
    context = message.get("context")
    for traits in (
        message.get("traits"),
        context.get("traits") if isinstance(context, Mapping) else None,
    ):
        if isinstance(traits, Mapping):
            for kind in ("email", "phone"):
                if kind in kinds and traits.get(kind):
                    candidates.append((kind, traits[kind]))
    for kind, value in candidates:
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        digest = _message_identifier_hash(kind, str(value))
        if digest is not None and digest in hashes:
            Suppression.objects.filter(identifier_hash=digest).update(
                dropped_count=F("dropped_count") + 1, last_dropped_at=timezone.now()
            )
            return "suppressed"
    return None


def subject_is_suppressed(*, identifiers: dict[str, str]) -> bool:
    hashes = _suppressed.current().hashes
    return any(identifier_hash(k, v) in hashes for k, v in identifiers.items())


def _subject_hash_pairs(
    identifiers: dict[str, str], profile_ids: list[int]
) -> dict[str, tuple[str, int | None]]:
    """hash -> (kind, profile id) for the subject's identifiers and its profiles' identities."""
    pairs: dict[str, tuple[str, int | None]] = {}
    owner = profile_ids[0] if profile_ids else None
    for kind, value in identifiers.items():
        pairs[identifier_hash(kind, value)] = (kind, owner)
    identity = selectors._identity_model()
    for kind, value, profile_id in identity.objects.filter(
        profile_id__in=profile_ids, kind__in=SUBJECT_KINDS
    ).values_list("kind", "value", "profile_id"):
        try:
            normalized = identifier_normalize(kind, value)
        except ValueError:
            normalized = value
        pairs[identifier_hash(kind, normalized)] = (kind, profile_id)
    return pairs


def suppression_create(
    *,
    identifiers: dict[str, str],
    profile_ids: list[int],
    request: PrivacyRequest | None = None,
    actor: Any = None,
) -> int:
    """Suppress the subject: every identifier it is known by. Returns how many are new."""
    pairs = _subject_hash_pairs(identifiers, profile_ids)
    existing = set(
        Suppression.objects.filter(identifier_hash__in=pairs).values_list(
            "identifier_hash", flat=True
        )
    )
    Suppression.objects.bulk_create(
        [
            Suppression(identifier_hash=h, kind=kind, profile_id=pid, request=request)
            for h, (kind, pid) in pairs.items()
            if h not in existing
        ],
        ignore_conflicts=True,
    )
    _suppression_changed()
    for pid in profile_ids or [None]:
        audit_record(
            actor=actor,
            action="suppress",
            resource="privacy",
            resource_id=request.pk if request else "",
            profile_id=pid,
            details={"identifiers": len(pairs)},
        )
    return len(pairs) - len(existing)


def suppression_remove(
    *, identifiers: dict[str, str], profile_ids: list[int], request=None, actor=None
) -> int:
    pairs = _subject_hash_pairs(identifiers, profile_ids)
    deleted, _ = Suppression.objects.filter(
        Q(identifier_hash__in=pairs) | Q(profile_id__in=profile_ids)
    ).delete()
    _suppression_changed()
    audit_record(
        actor=actor,
        action="unsuppress",
        resource="privacy",
        resource_id=request.pk if request else "",
        details={"removed": deleted},
    )
    return deleted


# --- privacy requests ----------------------------------------------------------------------


def privacy_request_create(
    *,
    regulation_type: str,
    subject: dict[str, Any],
    regulation: str = Regulation.GDPR,
    changes: dict[str, Any] | None = None,
    submitted_by: Any = None,
    api_key: ApiKey | None = None,
    due_at: datetime | None = None,
    ip: str | None = None,
) -> PrivacyRequest:
    """Open a request. One sent with an API key (which needs `privacy:write`) counts as
    verified by the system that sent it and is queued at once; one a staff member enters
    waits in NOT_VERIFIED until someone verifies the person's identity."""
    if regulation_type not in RegulationType.values:
        raise PrivacyRequestError(
            f"regulation_type must be one of {', '.join(RegulationType.values)}"
        )
    if regulation not in Regulation.values:
        raise PrivacyRequestError(f"regulation must be one of {', '.join(Regulation.values)}")
    try:
        identifiers = selectors.subject_identifiers(subject)
    except ValueError as exc:
        raise PrivacyRequestError(f"subject: {exc}") from exc
    if not identifiers:
        raise PrivacyRequestError("subject: give at least one of " + ", ".join(SUBJECT_KINDS))
    changes = changes or {}
    if regulation_type == RegulationType.RECTIFY:
        traits = changes.get("traits")
        if not isinstance(traits, dict) or not traits:
            raise PrivacyRequestError('changes: RECTIFY needs {"traits": {name: value, ...}}')
    elif changes:
        raise PrivacyRequestError("changes: only RECTIFY requests take changes")
    verified = api_key is not None
    now = timezone.now()
    with transaction.atomic():
        request = PrivacyRequest.objects.create(
            regulation_type=regulation_type,
            regulation=regulation,
            status=RequestStatus.INITIALIZED if verified else RequestStatus.NOT_VERIFIED,
            subject=identifiers,
            subject_hashes={k: identifier_hash(k, v) for k, v in identifiers.items()},
            subject_kinds=",".join(sorted(identifiers)),
            changes=changes,
            verified_at=now if verified else None,
            verification_note="Sent by an API key with privacy:write" if verified else "",
            submitted_by=submitted_by if getattr(submitted_by, "pk", None) else None,
            submitted_by_key=api_key,
            due_at=due_at or PrivacyRequest.due_for(regulation, now),
        )
        audit_record(
            actor=api_key or submitted_by,
            action="privacy.create",
            resource="privacy",
            resource_id=request.pk,
            ip=ip,
            details={"regulation_type": regulation_type, "subject_kinds": request.subject_kinds},
        )
        if verified:
            _queue(request)
    return request


def _queue(request: PrivacyRequest) -> None:
    from consent.tasks import privacy_request_process_task

    privacy_request_process_task.delay_on_commit(request.pk)


def privacy_request_verify(
    *, request: PrivacyRequest, actor: Any, note: str = "", ip: str | None = None
) -> PrivacyRequest:
    if request.status != RequestStatus.NOT_VERIFIED:
        raise PrivacyRequestError(f"request is {request.status}, not waiting for verification")
    with transaction.atomic():
        request.status = RequestStatus.INITIALIZED
        request.verified_at = timezone.now()
        request.verified_by = actor if getattr(actor, "pk", None) else None
        request.verification_note = note[:500]
        request.save(update_fields=["status", "verified_at", "verified_by", "verification_note"])
        audit_record(
            actor=actor, action="privacy.verify", resource="privacy", resource_id=request.pk, ip=ip
        )
        _queue(request)
    return request


def privacy_request_assign(
    *, request: PrivacyRequest, assignee: Any, actor: Any, ip: str | None = None
) -> PrivacyRequest:
    request.assigned_to = assignee
    request.save(update_fields=["assigned_to"])
    audit_record(
        actor=actor,
        action="privacy.assign",
        resource="privacy",
        resource_id=request.pk,
        ip=ip,
        details={"assignee_id": getattr(assignee, "pk", None)},
    )
    return request


def privacy_request_comment_add(
    *, request: PrivacyRequest, author: Any, body: str, ip: str | None = None
) -> PrivacyRequestComment:
    body = body.strip()
    if not body:
        raise PrivacyRequestError("comment must not be empty")
    comment = PrivacyRequestComment.objects.create(request=request, author=author, body=body)
    audit_record(
        actor=author, action="privacy.comment", resource="privacy", resource_id=request.pk, ip=ip
    )
    return comment


def privacy_request_cancel(
    *, request: PrivacyRequest, actor: Any, ip: str | None = None
) -> PrivacyRequest:
    updated = PrivacyRequest.objects.filter(
        pk=request.pk, status__in=[RequestStatus.NOT_VERIFIED, RequestStatus.INITIALIZED]
    ).update(status=RequestStatus.CANCELLED, finished_at=timezone.now())
    if not updated:
        raise PrivacyRequestError(f"a {request.status} request cannot be cancelled")
    _seal(request.pk)
    audit_record(
        actor=actor, action="privacy.cancel", resource="privacy", resource_id=request.pk, ip=ip
    )
    request.refresh_from_db()
    return request


def _progress(request_id: int, pct: int) -> None:
    PrivacyRequest.objects.filter(pk=request_id).update(progress=max(0, min(100, pct)))


def _seal(request_id: int) -> None:
    """Done: keep the subject only hashed, and of RECTIFY changes only the trait names."""
    request = PrivacyRequest.objects.get(pk=request_id)
    changes = request.changes
    if isinstance(changes.get("traits"), dict):
        changes = {"traits": sorted(changes["traits"])}
    PrivacyRequest.objects.filter(pk=request_id).update(subject={}, changes=changes)


def privacy_request_process(*, request: PrivacyRequest, actor: Any = None) -> PrivacyRequest:
    """Run a verified request. Claimed with a conditional update, so a second worker (or the
    beat run) finding it RUNNING leaves it alone."""
    claimed = PrivacyRequest.objects.filter(
        pk=request.pk, status=RequestStatus.INITIALIZED, verified_at__isnull=False
    ).update(status=RequestStatus.RUNNING, started_at=timezone.now(), progress=0, error="")
    if not claimed:
        request.refresh_from_db()
        return request
    request.refresh_from_db()
    identifiers = dict(request.subject)
    status = RequestStatus.FINISHED
    result: dict[str, Any] = {}
    verification: dict[str, Any] = {}
    export_file = ""
    try:
        profile_ids = selectors.subject_profile_ids(identifiers=identifiers)
        result["profiles"] = len(profile_ids)
        kind = request.regulation_type
        if kind in (RegulationType.SUPPRESS_ONLY, RegulationType.SUPPRESS_WITH_DELETE):
            result["suppressed_identifiers"] = suppression_create(
                identifiers=identifiers, profile_ids=profile_ids, request=request, actor=actor
            )
        if kind == RegulationType.UNSUPPRESS:
            result["unsuppressed"] = suppression_remove(
                identifiers=identifiers, profile_ids=profile_ids, request=request, actor=actor
            )
        if kind == RegulationType.ACCESS:
            export_file = access.access_export_build(
                request=request,
                profile_ids=profile_ids,
                progress=lambda pct: _progress(request.pk, pct),
            )
        if kind == RegulationType.RECTIFY:
            result["rectified_profiles"] = _rectify(
                profile_ids=profile_ids, traits=request.changes["traits"]
            )
        if request.is_erasure:
            needles = set(identifiers.values()) | {
                v for _, v in selectors.identities_of_profiles(profile_ids=profile_ids)
            }
            _progress(request.pk, 10)
            result.update(
                erasure.subject_erase(profile_ids=profile_ids, identifiers=needles, request=request)
            )
            _progress(request.pk, 70)
            _seal(request.pk)
            verification = erasure.erasure_sweep_and_verify(
                identifiers=needles, profile_ids=profile_ids, request=request
            )
            for label, count in verification["swept"].items():
                result["removed"][f"{label} (mentions)"] = count
            if not verification["clean"]:
                status = RequestStatus.PARTIAL_SUCCESS
        for pid in profile_ids or [None]:
            audit_record(
                actor=actor,
                action=f"privacy.{kind.lower()}",
                resource="privacy",
                resource_id=request.pk,
                profile_id=pid,
                details={"status": status},
            )
    except Exception as exc:
        logger.exception("privacy request %s failed", request.pk)
        status = RequestStatus.FAILED
        result["error_type"] = type(exc).__name__
        PrivacyRequest.objects.filter(pk=request.pk).update(error=f"{type(exc).__name__}: {exc}")
    PrivacyRequest.objects.filter(pk=request.pk).update(
        status=status,
        progress=100 if status != RequestStatus.FAILED else F("progress"),
        result=result,
        verification=verification,
        export_file=export_file,
        finished_at=timezone.now(),
    )
    if status != RequestStatus.FAILED:
        _seal(request.pk)
    request.refresh_from_db()
    return request


def _rectify(*, profile_ids: list[int], traits: dict[str, Any]) -> int:
    now = timezone.now().isoformat()
    count = 0
    for profile in Profile.objects.filter(pk__in=profile_ids).select_for_update():
        profile.traits = {**profile.traits, **traits}
        profile.trait_timestamps = {**profile.trait_timestamps, **dict.fromkeys(traits, now)}
        profile.save(update_fields=["traits", "trait_timestamps", "updated_at"])
        count += 1
    return count


def privacy_requests_process_due(*, limit: int = 50, actor: Any = None) -> list[PrivacyRequest]:
    """Process what is waiting (verified, not yet run), oldest due date first."""
    processed = []
    for request in list(selectors.privacy_requests_due()[:limit]):
        processed.append(privacy_request_process(request=request, actor=actor))
    return processed


# --- retention -----------------------------------------------------------------------------


def retention_purge(*, batch_size: int | None = None, now: datetime | None = None) -> int:
    """Delete events older than their retention policy, in batches. Returns rows deleted."""
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH
    now = now or timezone.now()
    policies = list(RetentionPolicy.objects.filter(enabled=True))
    named = [p.event_name for p in policies if p.event_name != "*"]
    total = 0
    for policy in policies:
        cutoff = now - timedelta(days=policy.days)
        events = Event.objects.filter(timestamp__lt=cutoff)
        events = (
            events.exclude(event__in=named)
            if policy.event_name == "*"
            else events.filter(event=policy.event_name)
        )
        purged = 0
        while True:
            pks = list(events.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not pks:
                break
            with transaction.atomic():
                deleted, _ = Event.objects.filter(pk__in=pks).delete()
            purged += deleted
        RetentionPolicy.objects.filter(pk=policy.pk).update(last_run_at=now, last_purged=purged)
        if purged:
            audit_record(
                actor=None,
                action="retention.purge",
                resource="events",
                resource_id=policy.event_name,
                details={"deleted": purged, "days": policy.days},
            )
        total += purged
    return total
