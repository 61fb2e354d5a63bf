"""The real-time pipeline stage: once per processed chunk, re-evaluate only the segments the
chunk's events can affect, each only for the profiles whose events can affect it, and return
the enters and exits for the next stage. The same evaluation serves profile merges
(`segment_memberships_evaluate`, see segments.hooks)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from profiles.features import ORDER_COMPLETED as ORDER_EVENT
from profiles.features import ORDER_FEATURES as ORDER_ONLY_FEATURES
from profiles.models import Event, Profile
from segments import selectors
from segments.compiler import AnyOf, base_profiles, compiled_sql
from segments.models import MembershipChange, Segment, SegmentMembership
from segments.services.webhooks import webhook_deliveries_record
from segments.signals import segment_membership_changed

INDEX_VERSION_KEY = "segments:index:version"
CAUSE = MembershipChange.Cause.REALTIME


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
        _index = (version, [_indexed(*row) for row in rows])
    return _index[1]


def _indexed(
    pk: int, definition: Mapping[str, Any], deps: Mapping[str, Any], webhook_url: str
) -> IndexedSegment:
    computed = set(deps.get("computed", ()))
    names = set(deps.get("event_names", ()))
    if computed & ORDER_ONLY_FEATURES:
        names.add(ORDER_EVENT)
    return IndexedSegment(
        id=pk,
        definition=definition,
        trait_keys=frozenset(deps.get("trait_keys", ())),
        event_names=frozenset(names),
        # Consent arrives with events too (SDK context), recorded by the consent stage.
        any_event=bool(
            computed - ORDER_ONLY_FEATURES or deps.get("identifiers") or deps.get("consents")
        ),
        cacheable=not deps.get("date_windows", True),
        webhook_url=webhook_url,
    )


def segment_index_invalidate() -> None:
    # A fresh random version, never a counter: after a cache flush a counter starts again at
    # a number some worker's stale index may still carry.
    cache.set(INDEX_VERSION_KEY, uuid.uuid4().hex, None)


@dataclass(frozen=True)
class MembershipTransition:
    """One profile entering (`entered`) or leaving (not `entered`) one segment."""

    segment_id: int
    profile_id: int
    entered: bool


def segment_candidates(
    *, events: Iterable[Event], index: list[IndexedSegment] | None = None
) -> list[IndexedSegment]:
    """Only segments that can depend on what these events changed."""
    names: set[str] = set()
    traits: set[str] = set()
    any_event = False
    for event in events:
        any_event = True
        if event.event:
            names.add(event.event)
        traits.update(_keys(event.traits))
        traits.update(
            _keys(event.context.get("traits") if isinstance(event.context, dict) else None)
        )
    if not any_event:
        return []
    return [
        s
        for s in (segment_index() if index is None else index)
        if s.any_event or s.event_names & names or s.trait_keys & traits
    ]


def _keys(traits: Any) -> Iterable[str]:
    # Events hold what clients sent: traits that are not an object (context.traits is not
    # schema-checked) name no trait, as profiles.services reads them.
    return traits.keys() if isinstance(traits, dict) else ()


def segment_memberships_refresh(
    *, resolved: Sequence[tuple[Profile, Sequence[Event]]], now: dt.datetime | None = None
) -> list[MembershipTransition]:
    """Pipeline stage, once per chunk: re-evaluate the segments the chunk's events can affect,
    each only for the profiles whose events can affect it (one query per segment, all sent as
    one statement with the current memberships), then record every enter/exit (history,
    webhook deliveries) and announce it after commit (`segment_membership_changed`).

    Returns the membership changes, for the stages that act on them: every enter and exit
    this call recorded, one `MembershipTransition` per segment and profile, ordered by
    segment, enters before exits, then by profile (empty when nothing changed). A change that
    a concurrent refresh made first is that refresh's, and not in the list."""
    index = segment_index()
    asked = _profiles_to_evaluate(resolved, index)
    if not asked:
        return []
    now = now or timezone.now()
    by_id = {entry.id: entry for entry in index}
    inside, current = _memberships_evaluate(asked, by_id, now)
    entering = sorted(inside - current)
    leaving = sorted(current - inside)
    if not entering and not leaving:
        return []
    transitions = _memberships_apply(entering, leaving, now)
    _transitions_announce(transitions, by_id, now)
    return transitions


def _profiles_to_evaluate(
    resolved: Sequence[tuple[Profile, Sequence[Event]]], index: list[IndexedSegment]
) -> dict[int, list[int]]:
    """{segment id: the profiles whose events can affect it}, sorted."""
    wanted: dict[int, set[int]] = {}
    for profile, events in resolved:
        for entry in segment_candidates(events=events, index=index):
            wanted.setdefault(entry.id, set()).add(profile.pk)
    return {segment_id: sorted(ids) for segment_id, ids in wanted.items()}


def segment_memberships_evaluate(
    *, segments: Sequence[IndexedSegment], profile_ids: Collection[int], now: dt.datetime
) -> set[tuple[int, int]]:
    """The (segment id, profile id) pairs, of these segments and profiles, whose definition
    holds at `now`, whatever the stored memberships say. Reads only these profiles' rows; on
    PostgreSQL it is one statement."""
    ids = sorted(profile_ids)
    inside, _ = _memberships_evaluate(
        {entry.id: ids for entry in segments}, {entry.id: entry for entry in segments}, now
    )
    return inside


# Compiling a query costs more than running it for a few profiles, so on PostgreSQL each
# segment's real-time query is compiled once, with a sentinel `now` and profile list, and the
# real values are substituted into its parameters: every datetime parameter at or after year
# 8000 is the sentinel shifted by a window (definitions may only hold dates before 8000), and
# the profiles are one array parameter (compiler.AnyOf). Definitions with date-string windows
# (within_last on a trait) are never cached.
SENTINEL_NOW = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
SENTINEL_PROFILES = [-987_654_321_987]
_compiled: dict[tuple[Any, int, str], tuple[str, list] | None] = {}

# {segment id: profile ids} to evaluate, and the (segment id, profile id) pairs: those whose
# definition holds now, and those that are members now.
Asked = Mapping[int, list[int]]
Verdicts = tuple[set[tuple[int, int]], set[tuple[int, int]]]


def _memberships_evaluate(
    asked: Asked, index: Mapping[int, IndexedSegment], now: dt.datetime
) -> Verdicts:
    """For the asked (segment, profiles): the pairs that hold now, and those that are members
    now. Each definition is evaluated with every subquery narrowed to its profiles, so it reads
    only their rows."""
    if connection.vendor == "postgresql":
        inside, current = _memberships_evaluate_postgresql(asked, index, now)
    else:
        inside, current = _memberships_evaluate_portable(asked, index, now)
    pairs = {(segment_id, pk) for segment_id, ids in asked.items() for pk in ids}
    return inside, pairs & current


def _memberships_evaluate_portable(
    asked: Asked, index: Mapping[int, IndexedSegment], now: dt.datetime
) -> Verdicts:
    inside = {
        (segment_id, pk)
        for segment_id, profile_ids in asked.items()
        for pk in _members_queryset(index[segment_id], profile_ids, now)
    }
    everyone = sorted({pk for ids in asked.values() for pk in ids})
    current = SegmentMembership.objects.filter(
        AnyOf(F("profile_id"), everyone), segment_id__in=list(asked)
    ).values_list("segment_id", "profile_id")
    return inside, set(current)


def _memberships_evaluate_postgresql(
    asked: Asked, index: Mapping[int, IndexedSegment], now: dt.datetime
) -> Verdicts:
    """Every definition's query and the current memberships, as one statement."""
    parts: list[str] = []
    params: list[Any] = []
    for segment_id, profile_ids in asked.items():
        compiled = _members_sql(index[segment_id], profile_ids, now)
        if compiled is None:
            continue  # the definition matches nobody
        sql, part_params = compiled
        # The compiled SQL is the ORM's own; the definition only ever contributes parameters.
        parts.append(f"SELECT true, {int(segment_id)}, m.* FROM ({sql}) AS m")  # noqa: S608
        params += part_params
    parts.append(
        f"SELECT false, segment_id, profile_id FROM {SegmentMembership._meta.db_table} "  # noqa: S608
        "WHERE profile_id = ANY(%s::bigint[]) AND segment_id = ANY(%s::bigint[])"
    )
    params += [sorted({pk for ids in asked.values() for pk in ids}), list(asked)]
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        rows = cursor.fetchall()
    inside = {(segment_id, pk) for holds, segment_id, pk in rows if holds}
    current = {(segment_id, pk) for holds, segment_id, pk in rows if not holds}
    return inside, current


def _members_sql(
    entry: IndexedSegment, profile_ids: list[int], now: dt.datetime
) -> tuple[str, list] | None:
    """The SQL and parameters of `entry`'s members among `profile_ids` at `now`; None: the
    definition matches nobody. Cacheable definitions reuse their compiled SQL, with `now` and
    the profiles substituted for the sentinels."""
    if not entry.cacheable:
        compiled = compiled_sql(_members_queryset(entry, profile_ids, now))
        return None if compiled is None else (compiled[0], list(compiled[1]))
    cached = _compiled_sql(entry)
    if cached is None:
        return None
    sql, params = cached
    return sql, [
        now + (p - SENTINEL_NOW)
        if isinstance(p, dt.datetime) and p.year >= 8000
        else profile_ids
        if p == SENTINEL_PROFILES
        else p
        for p in params
    ]


def _compiled_sql(entry: IndexedSegment) -> tuple[str, list] | None:
    """None: the definition matches nobody (see compiler.compiled_sql)."""
    # The index version covers definitions of segments referred to by this one.
    key = (_index[0], entry.id, json.dumps(entry.definition, sort_keys=True))
    if key not in _compiled:
        if len(_compiled) > 512:
            _compiled.clear()
        compiled = compiled_sql(_members_queryset(entry, SENTINEL_PROFILES, SENTINEL_NOW))
        _compiled[key] = None if compiled is None else (compiled[0], list(compiled[1]))
    return _compiled[key]


def _members_queryset(entry: IndexedSegment, profile_ids: list[int], now: dt.datetime) -> Any:
    return (
        base_profiles()
        .filter(AnyOf(F("pk"), profile_ids))
        .filter(selectors.definition_q(entry.definition, now=now, profile_ids=profile_ids))
        .order_by()
        .values_list("pk", flat=True)
    )


def _memberships_apply(
    entering: list[tuple[int, int]], leaving: list[tuple[int, int]], now: dt.datetime
) -> list[MembershipTransition]:
    """Insert and delete membership rows and write their history; returns only the changes
    this call really made (not one that a concurrent refresh made first), in stage order."""
    if connection.vendor == "postgresql":
        entered, exited = _memberships_apply_postgresql(entering, leaving, now)
    else:
        entered, exited = _memberships_apply_portable(entering, leaving, now)
    return sorted(
        [MembershipTransition(s, p, True) for s, p in entered]
        + [MembershipTransition(s, p, False) for s, p in exited],
        key=lambda c: (c.segment_id, not c.entered, c.profile_id),
    )


def _memberships_apply_portable(
    entering: list[tuple[int, int]], leaving: list[tuple[int, int]], now: dt.datetime
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
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
        MembershipChange(segment_id=s, profile_id=p, kind=kind, cause=CAUSE, at=now)
        for kind, pairs in (("enter", entered), ("exit", exited))
        for s, p in pairs
    )
    return entered, exited


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
                "cause": CAUSE.value,
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


def _transitions_announce(
    transitions: list[MembershipTransition], index: Mapping[int, IndexedSegment], now: dt.datetime
) -> None:
    """Webhook deliveries for the segments that have one; the signal after commit."""
    by_segment: dict[int, tuple[list[int], list[int]]] = {}
    for change in transitions:
        moved = by_segment.setdefault(change.segment_id, ([], []))
        moved[0 if change.entered else 1].append(change.profile_id)
    if not by_segment:
        return
    hooked = [i for i in by_segment if index[i].webhook_url]
    for segment in Segment.objects.filter(pk__in=hooked).order_by("pk") if hooked else []:
        entered, exited = by_segment[segment.pk]
        webhook_deliveries_record(
            segment=segment, entered=entered, exited=exited, cause=CAUSE, at=now
        )

    def announce() -> None:
        segments = Segment.objects.in_bulk(list(by_segment))
        for segment_id, (entered_ids, exited_ids) in sorted(by_segment.items()):
            if segment_id in segments:
                segment_membership_changed.send(
                    sender=Segment,
                    segment=segments[segment_id],
                    entered=entered_ids,
                    exited=exited_ids,
                    cause=CAUSE,
                    at=now,
                )

    transaction.on_commit(announce)
