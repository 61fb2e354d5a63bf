"""Writes: segment definitions, membership refresh (full and real-time), webhooks.

Membership is materialised in `SegmentMembership`; every enter/exit is also a `MembershipChange`
row, announced after commit with `segments.signals.segment_membership_changed` and, when the
segment has a webhook, recorded as a `WebhookDelivery` that a task sends after commit.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from profiles.models import Event, Profile
from segments import conditions, selectors
from segments.compiler import AnyOf, base_profiles
from segments.models import (
    MembershipChange,
    Segment,
    SegmentMembership,
    SegmentSnapshot,
    WebhookDelivery,
)
from segments.signals import segment_membership_changed

log = logging.getLogger(__name__)

WEBHOOK_BATCH = 500
WEBHOOK_MAX_ATTEMPTS = 5
INDEX_VERSION_KEY = "segments:index:version"


class TransientError(Exception):
    """A failure worth retrying (the receiver was down or answered 5xx)."""


# --- Definitions ---------------------------------------------------------------------------


def segment_definition_check(
    *, definition: Any, segment: Segment | None = None
) -> conditions.Dependencies:
    """Validate a definition fully: schema, semantics, referenced segments exist, no cycle,
    consent available. Raises conditions.InvalidDefinition; returns its dependencies."""
    conditions.validate(definition, segment_exists=lambda i: Segment.objects.filter(pk=i).exists())
    resolver = selectors.definition_resolver()
    own_id = segment.pk if segment else None
    for pointer, node in conditions.walk_with_pointers(definition):
        if "segment" in node:
            if node["segment"] == own_id:
                raise conditions.InvalidDefinition(
                    [conditions.ConditionError(pointer, "a segment cannot contain itself")]
                )
            target = resolver(node["segment"])
            cycle = (
                conditions.find_cycle(own_id, target or {"all": []}, resolver) if own_id else None
            )
            if cycle:
                chain = " → ".join(f"#{i}" for i in [own_id, node["segment"], *cycle[1:]])
                raise conditions.InvalidDefinition(
                    [
                        conditions.ConditionError(
                            pointer, f"segments would refer in a cycle: {chain}"
                        )
                    ]
                )
        if "consent" in node:
            if selectors.consent_q_or_none() is None:
                raise conditions.InvalidDefinition(
                    [conditions.ConditionError(pointer, "consent conditions need the consent app")]
                )
            if not selectors.consent_purpose_known(node["consent"]):
                raise conditions.InvalidDefinition(
                    [
                        conditions.ConditionError(
                            pointer, f"unknown consent purpose {node['consent']!r}"
                        )
                    ]
                )
    return conditions.dependencies(definition, resolver)


def _index_changed() -> None:
    # A fresh random version, never a counter: after a cache flush a counter starts again at
    # a number some worker's stale index may still carry.
    cache.set(INDEX_VERSION_KEY, uuid.uuid4().hex, None)


@transaction.atomic
def segment_create(
    *,
    name: str,
    definition: Mapping[str, Any],
    actor: AbstractBaseUser | None = None,
    description: str = "",
    webhook_url: str = "",
) -> Segment:
    """Create a segment and queue its first refresh after commit."""
    deps = segment_definition_check(definition=definition)
    segment = Segment.objects.create(
        name=name,
        description=description,
        definition=definition,
        definition_version=conditions.DEFINITION_VERSION,
        dependencies=deps.as_dict(),
        webhook_url=webhook_url,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    _index_changed()
    _queue_refresh(segment, cause=MembershipChange.Cause.DEFINITION)
    return segment


@transaction.atomic
def segment_update(
    *,
    segment: Segment,
    name: str | None = None,
    definition: Mapping[str, Any] | None = None,
    description: str | None = None,
    webhook_url: str | None = None,
) -> Segment:
    """Change a segment; a new definition is re-checked and membership refreshed."""
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    if name is not None:
        segment.name = name
    if description is not None:
        segment.description = description
    if webhook_url is not None:
        segment.webhook_url = webhook_url
    definition_changed = definition is not None and definition != segment.definition
    if definition_changed:
        deps = segment_definition_check(definition=definition, segment=segment)
        segment.definition = definition
        segment.definition_version = conditions.DEFINITION_VERSION
        segment.dependencies = deps.as_dict()
    segment.save()
    if definition_changed:
        # Segments that embed this one depend on what it depends on now.
        resolver = selectors.definition_resolver()
        for user in selectors.segments_using(segment_id=segment.pk):
            user.dependencies = conditions.dependencies(user.definition, resolver).as_dict()
            user.save(update_fields=["dependencies", "updated_at"])
            _queue_refresh(user, cause=MembershipChange.Cause.DEFINITION)
        _queue_refresh(segment, cause=MembershipChange.Cause.DEFINITION)
    _index_changed()
    return segment


def segment_archive(*, segment: Segment) -> Segment:
    """Archived segments stop refreshing; their members and history stay readable."""
    segment.status = Segment.Status.ARCHIVED
    segment.save(update_fields=["status", "updated_at"])
    _index_changed()
    return segment


def segment_unarchive(*, segment: Segment) -> Segment:
    segment.status = Segment.Status.ACTIVE
    segment.save(update_fields=["status", "updated_at"])
    _index_changed()
    _queue_refresh(segment, cause=MembershipChange.Cause.REFRESH)
    return segment


def segment_duplicate(*, segment: Segment, actor: AbstractBaseUser | None = None) -> Segment:
    return segment_create(
        name=f"{segment.name} (copy)"[:200],
        definition=segment.definition,
        actor=actor,
        description=segment.description,
    )


def _queue_refresh(segment: Segment, *, cause: str) -> None:
    from segments.tasks import segment_refresh_task

    segment_id = segment.pk
    transaction.on_commit(lambda: segment_refresh_task.delay(segment_id, cause))


# --- Full refresh --------------------------------------------------------------------------


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
    with transaction.atomic():
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
        _record_changes(segment, entered, exited, cause=cause, at=now)
    return RefreshResult(segment_id=segment.pk, entered=entered, exited=exited, size=size)


def _refresh_postgresql(
    segment: Segment, target: Any, now: dt.datetime
) -> tuple[list[int], list[int]]:
    # The target query is the ORM's own SQL with its parameters (the definition only ever
    # contributes parameters): one statement deletes leavers and inserts newcomers.
    target_sql, target_params = target.query.sql_with_params()
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


def _record_changes(
    segment: Segment, entered: list[int], exited: list[int], *, cause: str, at: dt.datetime
) -> None:
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
        _record_webhooks(segment, entered, exited, cause=cause, at=at)

    def announce() -> None:
        segment_membership_changed.send(
            sender=Segment, segment=segment, entered=entered, exited=exited, cause=cause, at=at
        )

    transaction.on_commit(announce)


def _record_webhooks(
    segment: Segment, entered: list[int], exited: list[int], *, cause: str, at: dt.datetime
) -> None:
    from segments.tasks import webhook_deliver_task

    changes = [("enter", p) for p in entered] + [("exit", p) for p in exited]
    for start in range(0, len(changes), WEBHOOK_BATCH):
        chunk = changes[start : start + WEBHOOK_BATCH]
        delivery = WebhookDelivery.objects.create(
            segment=segment,
            url=segment.webhook_url,
            payload={
                "segment": {"id": segment.pk, "name": segment.name},
                "at": at.isoformat(),
                "cause": cause,
                "entered": [p for kind, p in chunk if kind == "enter"],
                "exited": [p for kind, p in chunk if kind == "exit"],
            },
        )
        delivery_id = delivery.pk
        transaction.on_commit(lambda d=delivery_id: webhook_deliver_task.delay(d))


def segments_refresh_all() -> list[int]:
    """Queue a refresh of every active segment (beat): time-relative conditions move on their
    own, and every refresh adds a point to the size chart."""
    from segments.tasks import segment_refresh_task

    ids = list(Segment.objects.filter(status=Segment.Status.ACTIVE).values_list("pk", flat=True))
    for segment_id in ids:
        segment_refresh_task.delay(segment_id, MembershipChange.Cause.REFRESH)
    return ids


# --- Real time -----------------------------------------------------------------------------


# Computed features that only an order moves (profiles.services counts orders from this
# event); the others (last_seen, event_count, recency...) move with every event.
ORDER_EVENT = "Order Completed"
ORDER_ONLY_FEATURES = frozenset(
    {
        "frequency",
        "monetary",
        "lifetime_value",
        "order_count",
        "revenue",
        "first_order_at",
        "last_order_at",
    }
)


@dataclass(frozen=True)
class IndexedSegment:
    id: int
    definition: Mapping[str, Any]
    trait_keys: frozenset[str]
    event_names: frozenset[str]
    any_event: bool  # features and identifiers that move with every processed event
    # Real-time evaluation can reuse compiled SQL (no date-string windows inside).
    cacheable: bool = True
    webhook_url: str = ""


_index: tuple[Any, list[IndexedSegment]] = (None, [])


def segment_index() -> list[IndexedSegment]:
    """Active segments with what they depend on; reloaded when any segment changes."""
    global _index
    version = cache.get(INDEX_VERSION_KEY)
    if version is None:
        cache.add(INDEX_VERSION_KEY, uuid.uuid4().hex, None)
        version = cache.get(INDEX_VERSION_KEY)
    if _index[0] != version or version is None:
        rows = Segment.objects.filter(status=Segment.Status.ACTIVE).values_list(
            "pk", "definition", "dependencies", "webhook_url"
        )
        entries = []
        for pk, definition, deps, webhook_url in rows:
            computed = set(deps.get("computed", ()))
            names = set(deps.get("event_names", ()))
            if computed & ORDER_ONLY_FEATURES:
                names.add(ORDER_EVENT)
            entries.append(
                IndexedSegment(
                    id=pk,
                    definition=definition,
                    trait_keys=frozenset(deps.get("trait_keys", ())),
                    event_names=frozenset(names),
                    # Consent arrives with events too (SDK context), recorded by the consent stage.
                    any_event=bool(
                        computed - ORDER_ONLY_FEATURES
                        or deps.get("identifiers")
                        or deps.get("consents")
                    ),
                    cacheable=not deps.get("date_windows", True),
                    webhook_url=webhook_url,
                )
            )
        _index = (version, entries)
    return _index[1]


@dataclass(frozen=True)
class MembershipChangeSet:
    segment_id: int
    profile_id: int
    entered: bool  # True: entered, False: exited


def segment_candidates(
    events: Iterable[Event], *, index: list[IndexedSegment] | None = None
) -> list[IndexedSegment]:
    """Only segments that can depend on what these events changed."""
    names: set[str] = set()
    traits: set[str] = set()
    any_event = False
    for event in events:
        any_event = True
        if event.event:
            names.add(event.event)
        traits.update((event.traits or {}).keys())
        traits.update(((event.context or {}).get("traits") or {}).keys())
    if not any_event:
        return []
    return [
        s
        for s in (segment_index() if index is None else index)
        if s.any_event or s.event_names & names or s.trait_keys & traits
    ]


def segment_memberships_refresh(
    *, resolved: Sequence[tuple[Profile, Sequence[Event]]], now: dt.datetime | None = None
) -> list[MembershipChangeSet]:
    """Pipeline stage, once per chunk: re-evaluate the segments the chunk's events can affect,
    each only for the profiles whose events can affect it (one query per segment, all sent as
    one statement with the current memberships), then record and announce every enter/exit.
    Returns the changes, by segment then profile."""
    index = segment_index()
    wanted: dict[int, set[int]] = {}
    for profile, events in resolved:
        for entry in segment_candidates(events, index=index):
            wanted.setdefault(entry.id, set()).add(profile.pk)
    if not wanted:
        return []
    now = now or timezone.now()
    inside, current = _memberships_evaluate(
        {segment_id: sorted(ids) for segment_id, ids in wanted.items()},
        {entry.id: entry for entry in index},
        now,
    )
    entering = sorted(inside - current)
    leaving = sorted(current - inside)
    if not entering and not leaving:
        return []
    return _memberships_apply(entering, leaving, {entry.id: entry for entry in index}, now)


# Compiling a query costs more than running it for a few profiles, so on PostgreSQL each
# segment's real-time query is compiled once, with a sentinel `now` and profile list, and the
# real values are substituted into its parameters: every datetime parameter at or after year
# 8000 is the sentinel shifted by a window (definitions may only hold dates before 8000), and
# the profiles are one array parameter (compiler.AnyOf). Definitions with date-string windows
# (within_last on a trait) are never cached.
SENTINEL_NOW = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
SENTINEL_PROFILES = [-987_654_321_987]
_compiled: dict[tuple[Any, int, str], tuple[str, list]] = {}


def _memberships_evaluate(
    asked: Mapping[int, list[int]], index: Mapping[int, IndexedSegment], now: dt.datetime
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """For the asked (segment, profiles): the (segment id, profile id) pairs that hold now, and
    those that are members now. Each definition is evaluated with every subquery narrowed to
    its profiles, so it reads only their rows; on PostgreSQL everything is one statement."""
    pairs = {(segment_id, pk) for segment_id, ids in asked.items() for pk in ids}
    everyone = sorted({pk for ids in asked.values() for pk in ids})
    if connection.vendor != "postgresql":
        inside = {
            (segment_id, pk)
            for segment_id, profile_ids in asked.items()
            for pk in _members_queryset(index[segment_id], profile_ids, now)
        }
        current = SegmentMembership.objects.filter(
            AnyOf(F("profile_id"), everyone), segment_id__in=list(asked)
        ).values_list("segment_id", "profile_id")
        return inside, pairs & set(current)
    parts: list[str] = []
    params: list[Any] = []
    for segment_id, profile_ids in asked.items():
        entry = index[segment_id]
        if entry.cacheable:
            sql, template = _compiled_sql(entry)
            part_params = [
                now + (p - SENTINEL_NOW)
                if isinstance(p, dt.datetime) and p.year >= 8000
                else profile_ids
                if p == SENTINEL_PROFILES
                else p
                for p in template
            ]
        else:
            sql, part_params = _members_queryset(entry, profile_ids, now).query.sql_with_params()
        # The compiled SQL is the ORM's own; the definition only ever contributes parameters.
        parts.append(f"SELECT true, {int(segment_id)}, m.* FROM ({sql}) AS m")  # noqa: S608
        params += part_params
    parts.append(
        f"SELECT false, segment_id, profile_id FROM {SegmentMembership._meta.db_table} "  # noqa: S608
        "WHERE profile_id = ANY(%s::bigint[]) AND segment_id = ANY(%s::bigint[])"
    )
    params += [everyone, list(asked)]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()
    inside = {(segment_id, pk) for holds, segment_id, pk in rows if holds}
    current = {(segment_id, pk) for holds, segment_id, pk in rows if not holds}
    return inside, pairs & current


def _compiled_sql(entry: IndexedSegment) -> tuple[str, list]:
    # The index version covers definitions of segments referred to by this one.
    key = (_index[0], entry.id, json.dumps(entry.definition, sort_keys=True))
    compiled = _compiled.get(key)
    if compiled is None:
        if len(_compiled) > 512:
            _compiled.clear()
        qs = _members_queryset(entry, SENTINEL_PROFILES, SENTINEL_NOW)
        sql, params = qs.query.sql_with_params()
        compiled = _compiled[key] = (sql, list(params))
    return compiled


def _members_queryset(entry: IndexedSegment, profile_ids: list[int], now: dt.datetime) -> Any:
    return (
        base_profiles()
        .filter(AnyOf(F("pk"), profile_ids))
        .filter(selectors.definition_q(entry.definition, now=now, profile_ids=profile_ids))
        .order_by()
        .values_list("pk", flat=True)
    )


def _memberships_apply(
    entering: list[tuple[int, int]],
    leaving: list[tuple[int, int]],
    index: Mapping[int, IndexedSegment],
    now: dt.datetime,
) -> list[MembershipChangeSet]:
    """Insert and delete membership rows and write their history; only rows this call really
    changed (not one that a concurrent refresh changed first) are recorded and announced."""
    cause = MembershipChange.Cause.REALTIME
    if connection.vendor == "postgresql":
        entered, exited = _memberships_apply_postgresql(entering, leaving, now)
    else:
        entered, exited = [], []
        for segment_id, profile_id in entering:
            _, created = SegmentMembership.objects.get_or_create(
                segment_id=segment_id, profile_id=profile_id, defaults={"entered_at": now}
            )
            if created:
                entered.append((segment_id, profile_id))
        for segment_id, profile_id in leaving:
            deleted, _ = SegmentMembership.objects.filter(
                segment_id=segment_id, profile_id=profile_id
            ).delete()
            if deleted:
                exited.append((segment_id, profile_id))
        MembershipChange.objects.bulk_create(
            MembershipChange(segment_id=s, profile_id=p, kind=kind, cause=cause, at=now)
            for kind, pairs in (("enter", entered), ("exit", exited))
            for s, p in pairs
        )
    changes = sorted(
        [MembershipChangeSet(s, p, True) for s, p in entered]
        + [MembershipChangeSet(s, p, False) for s, p in exited],
        key=lambda c: (c.segment_id, not c.entered, c.profile_id),
    )
    by_segment: dict[int, tuple[list[int], list[int]]] = {}
    for change in changes:
        moved = by_segment.setdefault(change.segment_id, ([], []))
        moved[0 if change.entered else 1].append(change.profile_id)
    hooked = [i for i in by_segment if index[i].webhook_url]
    for segment in Segment.objects.filter(pk__in=hooked).order_by("pk") if hooked else []:
        _record_webhooks(segment, *by_segment[segment.pk], cause=cause, at=now)

    def announce() -> None:
        segments = Segment.objects.in_bulk(list(by_segment))
        for segment_id, (entered_ids, exited_ids) in sorted(by_segment.items()):
            if segment_id in segments:
                segment_membership_changed.send(
                    sender=Segment,
                    segment=segments[segment_id],
                    entered=entered_ids,
                    exited=exited_ids,
                    cause=cause,
                    at=now,
                )

    if by_segment:
        transaction.on_commit(announce)
    return changes


def _memberships_apply_postgresql(
    entering: list[tuple[int, int]], leaving: list[tuple[int, int]], now: dt.datetime
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """One statement: insert the newcomers, delete the leavers, write the history of both."""
    membership = SegmentMembership._meta.db_table
    history = MembershipChange._meta.db_table
    sql = f"""
        WITH added AS (
            INSERT INTO {membership} (segment_id, profile_id, entered_at)
            SELECT s, p, %(now)s FROM unnest(%(in_s)s::bigint[], %(in_p)s::bigint[]) AS u(s, p)
            ON CONFLICT DO NOTHING
            RETURNING segment_id, profile_id
        ),
        gone AS (
            DELETE FROM {membership} m
            USING unnest(%(out_s)s::bigint[], %(out_p)s::bigint[]) AS u(s, p)
            WHERE m.segment_id = u.s AND m.profile_id = u.p
            RETURNING m.segment_id, m.profile_id
        ),
        moved AS (
            SELECT 'enter' AS kind, segment_id, profile_id FROM added
            UNION ALL SELECT 'exit', segment_id, profile_id FROM gone
        ),
        recorded AS (
            INSERT INTO {history} (segment_id, profile_id, kind, cause, at)
            SELECT segment_id, profile_id, kind, %(cause)s, %(now)s FROM moved
        )
        SELECT kind, segment_id, profile_id FROM moved
    """  # noqa: S608 - table names are ours, values bound
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "now": now,
                "cause": MembershipChange.Cause.REALTIME.value,
                "in_s": [s for s, _ in entering],
                "in_p": [p for _, p in entering],
                "out_s": [s for s, _ in leaving],
                "out_p": [p for _, p in leaving],
            },
        )
        rows = cursor.fetchall()
    entered = [(s, p) for kind, s, p in rows if kind == "enter"]
    exited = [(s, p) for kind, s, p in rows if kind == "exit"]
    return entered, exited


# --- Webhooks ------------------------------------------------------------------------------


def webhook_delivery_send(*, delivery_id: int) -> WebhookDelivery | None:
    """POST one recorded delivery. Idempotent: only a pending delivery is sent; a failure
    raises TransientError until the attempts run out, then the delivery is marked failed."""
    delivery = WebhookDelivery.objects.filter(
        pk=delivery_id, state=WebhookDelivery.State.PENDING
    ).first()
    if delivery is None:
        return None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
    delivery.attempts += 1
    body = json.dumps(delivery.payload).encode()
    request = urllib.request.Request(  # noqa: S310 - URLField validated to http(s)
        delivery.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "cdp-segments/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        return _webhook_failed(delivery, f"connection failed: {error.__class__.__name__}")
    if 200 <= status < 300:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=WebhookDelivery.State.SENT, sent_at=timezone.now(), last_error=""
        )
        delivery.state = WebhookDelivery.State.SENT
        return delivery
    return _webhook_failed(delivery, f"HTTP {status}")


def _webhook_failed(delivery: WebhookDelivery, reason: str) -> WebhookDelivery:
    final = delivery.attempts >= WEBHOOK_MAX_ATTEMPTS
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        last_error=reason[:300],
        state=WebhookDelivery.State.FAILED if final else WebhookDelivery.State.PENDING,
    )
    log.warning("segment webhook %s attempt %s failed: %s", delivery.pk, delivery.attempts, reason)
    if not final:
        raise TransientError(reason)
    delivery.state = WebhookDelivery.State.FAILED
    return delivery
