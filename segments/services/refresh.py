"""Full refresh of a segment's membership, and the recording of every enter/exit (history,
signal after commit, webhook deliveries)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from access.queueing import task_named
from segments import selectors
from segments.compiler import base_profiles, compiled_sql
from segments.models import (
    MembershipChange,
    Segment,
    SegmentMembership,
    SegmentSnapshot,
)
from segments.services.task_names import SEGMENT_REFRESH_TASK
from segments.services.webhooks import webhook_deliveries_record
from segments.signals import segment_membership_changed


@dataclass
class RefreshResult:
    segment_id: int
    entered: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)
    size: int = 0


def segment_refresh(
    *, segment: Segment, now: dt.datetime | None = None, cause: str = MembershipChange.Cause.REFRESH
) -> RefreshResult:
    """Recompute a segment's membership from its definition, in set-based SQL, record every
    enter/exit, snapshot the size. Safe to rerun; concurrent runs of one segment serialise on
    the segment row."""
    now = now or timezone.now()
    with selectors.analytical_transaction():
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
        if not segment.is_active:
            return RefreshResult(segment_id=segment.pk, size=segment.size)
        target = (
            base_profiles()
            .filter(selectors.definition_q(segment.definition, now=now))
            .order_by()
            .values("pk")
        )
        if connection.vendor == "postgresql":
            entered, exited = _refresh_postgresql(segment, target, now)
        else:
            entered, exited = _refresh_portable(segment, target, now)
        size = SegmentMembership.objects.filter(segment=segment).count()
        Segment.objects.filter(pk=segment.pk).update(size=size, refreshed_at=now)
        SegmentSnapshot.objects.create(segment=segment, at=now, size=size)
        membership_changes_record(
            segment=segment, entered=entered, exited=exited, cause=cause, at=now
        )
    return RefreshResult(segment_id=segment.pk, entered=entered, exited=exited, size=size)


def _refresh_postgresql(
    segment: Segment, target: Any, now: dt.datetime
) -> tuple[list[int], list[int]]:
    # The target query is the ORM's own SQL with its parameters (the definition only ever
    # contributes parameters): one statement deletes leavers and inserts newcomers.
    # A definition that matches nobody has no SQL (compiler.compiled_sql): an empty target.
    target_sql, target_params = compiled_sql(target) or ("SELECT NULL::bigint WHERE false", ())
    membership = SegmentMembership._meta.db_table
    sql = f"""
        WITH target (id) AS ({target_sql}),
        gone AS (
            DELETE FROM {membership} m WHERE m.segment_id = %s
            AND NOT EXISTS (SELECT 1 FROM target t WHERE t.id = m.profile_id)
            RETURNING m.profile_id
        ),
        added AS (
            INSERT INTO {membership} (segment_id, profile_id, entered_at)
            SELECT %s, t.id, %s FROM target t
            WHERE NOT EXISTS (
                SELECT 1 FROM {membership} m WHERE m.segment_id = %s AND m.profile_id = t.id
            )
            ON CONFLICT DO NOTHING
            RETURNING profile_id
        )
        SELECT 'exit', profile_id FROM gone UNION ALL SELECT 'enter', profile_id FROM added
    """  # noqa: S608 - table names are ours, the definition only contributes parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, [*target_params, segment.pk, segment.pk, now, segment.pk])
        rows = cursor.fetchall()
    entered = [pid for kind, pid in rows if kind == "enter"]
    exited = [pid for kind, pid in rows if kind == "exit"]
    return entered, exited


def _refresh_portable(
    segment: Segment, target: Any, now: dt.datetime
) -> tuple[list[int], list[int]]:
    wanted = set(target.values_list("pk", flat=True))
    current = set(
        SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
    )
    entered, exited = sorted(wanted - current), sorted(current - wanted)
    SegmentMembership.objects.filter(segment=segment, profile_id__in=exited).delete()
    SegmentMembership.objects.bulk_create(
        [SegmentMembership(segment=segment, profile_id=pid, entered_at=now) for pid in entered],
        batch_size=2000,
        ignore_conflicts=True,
    )
    return entered, exited


def membership_changes_record(
    *, segment: Segment, entered: list[int], exited: list[int], cause: str, at: dt.datetime
) -> None:
    """Record profiles entering and leaving `segment` (history rows, webhook deliveries) and
    announce them after commit (`segment_membership_changed`)."""
    if not entered and not exited:
        return
    MembershipChange.objects.bulk_create(
        [
            *(
                MembershipChange(segment=segment, profile_id=p, kind="enter", cause=cause, at=at)
                for p in entered
            ),
            *(
                MembershipChange(segment=segment, profile_id=p, kind="exit", cause=cause, at=at)
                for p in exited
            ),
        ],
        batch_size=5000,
    )
    if segment.webhook_url:
        webhook_deliveries_record(
            segment=segment, entered=entered, exited=exited, cause=cause, at=at
        )

    def announce() -> None:
        segment_membership_changed.send(
            sender=Segment, segment=segment, entered=entered, exited=exited, cause=cause, at=at
        )

    transaction.on_commit(announce)


def segments_refresh_all() -> list[int]:
    """Queue a refresh of every active segment (beat): time-relative conditions move on their
    own, and every refresh adds a point to the size chart."""
    ids = list(Segment.objects.filter(status=Segment.Status.ACTIVE).values_list("pk", flat=True))
    refresh = task_named(SEGMENT_REFRESH_TASK)
    for segment_id in ids:
        refresh.delay(segment_id, MembershipChange.Cause.REFRESH)
    return ids
