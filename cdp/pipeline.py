"""The data flow, top to bottom: every stage's service is called from here, by name, in order,
each given what the stages before it returned.

Accepted events (stored by ingestion with no profile) are processed in chunks, in one
transaction per chunk:

    claim the chunk's unprocessed events (skipping any another worker holds)
    → identity: resolve every event to one profile (create / join / merge)
                → (profile, its events) pairs
    → consent: record the consent signals events carry; drop what a suppression or missing
               consent forbids, strip what it limits → the pairs left, the stripped events
    → profiles: per profile, in event-time order, update traits, context and computed
                features; save the profiles; link events to them and mark them processed
                (with the stripped events' new content: one write per event row)
    → segments: re-evaluate the segments these events can affect, for the profiles whose
                events can affect them (one query per segment for the whole chunk); record
                every enter/exit, announce it after commit → the membership changes
    → campaigns: goal events end journeys; trigger events and the membership changes start
                 new ones (their deliveries recorded now, sent by workers after commit)
    → recommendations: the products the chunk's e-commerce events name are learned into the
                 catalog and recorded as interactions; those profiles' cached lists are
                 invalidated

Every stage answers for the whole chunk in a few queries, never one per profile (a query per
profile is what makes a pipeline slow); one with side effects outside the database (sending,
publishing) defers them with `transaction.on_commit`. Re-running a chunk changes nothing:
processed events are never claimed again. Workers that see the same people at once serialise
on the people's identifiers (see identity.services), so one person never becomes two profiles.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from campaigns.services import campaign_triggers_fire
from cdp.models import SWEEP_HEARTBEAT, Heartbeat
from consent.models import ConsentRecord
from consent.services import consent_filter_resolved, consent_signals_audit
from identity.services import identity_resolve
from profiles.models import Event, Profile
from profiles.services import (
    events_claim,
    events_mark_processed,
    events_pending_ids,
    profile_apply_events,
    profiles_save,
    profiles_sessions_recount,
)
from recommendations.services import interactions_record
from segments.services import segment_memberships_refresh

logger = logging.getLogger(__name__)

# Postgres errors worth running the whole chunk again for: a deadlock between workers (broken
# by Postgres), a serialization failure, and an identity row inserted concurrently by something
# other than the pipeline (unique violation).
_RETRYABLE_CODES = {"40P01", "40001", "23505"}
RETRIES = 5


def events_process(*, event_ids: Sequence[int], fill_to: int = 0) -> int:
    """Process accepted events into profiles; returns how many this call processed.

    Idempotent: events already processed (or being processed by another worker) are skipped.
    With `fill_to`, other pending events are taken on too, up to that many in the chunk (see
    `events_claim`). A chunk that keeps failing for reasons other than a lost database
    connection is split in halves until the event at fault is found; that one is logged and
    left unprocessed, so it cannot hold back the others.
    """
    for attempt in range(1, RETRIES + 1):
        try:
            return _events_process_chunk(event_ids, fill_to)
        except SoftTimeLimitExceeded:
            raise
        except Exception as error:
            code = getattr(error.__cause__, "pgcode", None)
            if code in _RETRYABLE_CODES and attempt < RETRIES:
                logger.warning("event chunk retried (attempt %s): pgcode %s", attempt, code)
                time.sleep(0.05 * attempt)
                continue
            lost_connection = isinstance(error, InterfaceError) or (
                isinstance(error, OperationalError) and code not in _RETRYABLE_CODES
            )
            if lost_connection:
                raise  # the task retries later, once the database is back
            return _events_process_split(event_ids, error)
    return 0  # unreachable


def _events_process_split(event_ids: Sequence[int], error: BaseException) -> int:
    ids = list(event_ids)
    if len(ids) <= 1:
        # Where and what, never the message: it may quote the event's personal data.
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        logger.error(
            "event %s could not be processed and stays pending: %s at %s",
            ids[0] if ids else None,
            type(error).__name__,
            where,
        )
        return 0
    middle = len(ids) // 2
    return events_process(event_ids=ids[:middle]) + events_process(event_ids=ids[middle:])


@transaction.atomic
def _events_process_chunk(event_ids: Sequence[int], fill_to: int) -> int:
    _commit_without_waiting_for_disk()
    events = events_claim(event_ids=event_ids, fill_to=fill_to)
    if not events:
        return 0

    resolved: list[tuple[Profile, list[Event]]] = identity_resolve(events=events)

    signals: list[ConsentRecord] = []
    resolved, stripped = consent_filter_resolved(resolved=resolved, audit_later=signals)

    late: list[Profile] = []
    for profile, profile_events in resolved:
        if profile_apply_events(profile=profile, events=profile_events):
            late.append(profile)

    events_mark_processed(events=events, rewritten=stripped)
    profiles_sessions_recount(profiles=late)
    profiles_save(profiles=[profile for profile, _ in resolved])

    changes = segment_memberships_refresh(resolved=resolved)
    campaign_triggers_fire(resolved=resolved, changes=changes)
    interactions_record(resolved=resolved)
    # Last: the audit chain's lock is held from an audit row's insert until commit.
    consent_signals_audit(records=signals)
    return len(events)


def events_process_pending(
    *, older_than: timedelta = timedelta(seconds=60), max_chunks: int = 50
) -> int:
    """Safety net: process events whose processing task was lost; returns how many.

    Only events accepted more than `older_than` ago are picked, so events whose task is merely
    queued are left to it. Works through at most `max_chunks` chunks per call. Records its
    run (`Heartbeat`), which /healthz reports.
    """
    chunk = settings.INGEST_PROCESS_CHUNK
    processed = 0
    for _ in range(max_chunks):
        pending = events_pending_ids(older_than=older_than, limit=chunk)
        if not pending:
            break
        done = events_process(event_ids=pending)
        processed += done
        if done == 0:
            break  # all held by other workers right now
    Heartbeat.objects.update_or_create(name=SWEEP_HEARTBEAT, defaults={"at": timezone.now()})
    return processed


def _commit_without_waiting_for_disk() -> None:
    """Let this transaction's commit return before its WAL reaches disk (Postgres only).

    Safe here because processing is derived and re-runnable: a crash can lose at most the last
    fraction of a second of commits, which leaves those events unprocessed (never half done),
    and the pending-events safety net processes them again. Accepted events themselves are
    stored by ingestion with normal, durable commits.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
