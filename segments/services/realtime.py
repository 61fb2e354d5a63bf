"""The real-time pipeline stage: re-evaluate, for one profile, only the segments that can
depend on what its events changed."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import BooleanField, ExpressionWrapper
from django.utils import timezone

from profiles.models import Event, Profile
from segments import selectors
from segments.compiler import base_profiles
from segments.models import (
    Segment,
    SegmentMembership,
)
from segments.services.refresh import membership_changes_record

INDEX_VERSION_KEY = "segments:index:version"


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
            "pk", "definition", "dependencies"
        )
        entries = []
        for pk, definition, deps in rows:
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
                )
            )
        _index = (version, entries)
    return _index[1]


@dataclass(frozen=True)
class MembershipChangeSet:
    segment_id: int
    entered: bool  # True: entered, False: exited


def segment_candidates(events: Iterable[Event]) -> list[IndexedSegment]:
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
        s for s in segment_index() if s.any_event or s.event_names & names or s.trait_keys & traits
    ]


def segment_memberships_refresh(
    *, profile: Profile, events: Iterable[Event], now: dt.datetime | None = None
) -> list[MembershipChangeSet]:
    """Pipeline stage: re-evaluate, for one profile, the segments these events can affect;
    record and announce every enter/exit. One query evaluates all candidate segments."""
    candidates = segment_candidates(events)
    if not candidates:
        return []
    now = now or timezone.now()
    verdicts = _evaluate_for_profile(profile.pk, candidates, now)
    current = set(
        SegmentMembership.objects.filter(
            profile_id=profile.pk, segment_id__in=[s.id for s in candidates]
        ).values_list("segment_id", flat=True)
    )
    changes: list[MembershipChangeSet] = []
    for entry in candidates:
        inside = verdicts.get(entry.id, False)
        if inside and entry.id not in current:
            changes.append(MembershipChangeSet(entry.id, True))
        elif not inside and entry.id in current:
            changes.append(MembershipChangeSet(entry.id, False))
    if changes:
        _apply_profile_changes(profile.pk, changes, now)
    return changes


# Compiling a query costs more than running it for one profile, so the real-time path compiles
# each set of candidate segments once, with a sentinel `now` and profile id, and substitutes the
# real values into the parameters: every datetime parameter at or after year 8000 is the
# sentinel shifted by a window (definitions may only hold dates before 8000), and the sentinel
# id is the profile. Definitions with date-string windows (within_last on a trait) are never
# cached. PostgreSQL only: its driver receives datetimes as such.
SENTINEL_NOW = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
SENTINEL_PROFILE = -987_654_321_987
_compiled: dict[tuple, tuple[str, list]] = {}


def _evaluate_for_profile(
    profile_id: int, candidates: list[IndexedSegment], now: dt.datetime
) -> dict[int, bool]:
    if connection.vendor != "postgresql" or not all(c.cacheable for c in candidates):
        return _evaluate_uncached(profile_id, candidates, now)
    # The index version covers definitions of segments referred to by these ones.
    key = (_index[0], tuple((c.id, json.dumps(c.definition, sort_keys=True)) for c in candidates))
    compiled = _compiled.get(key)
    if compiled is None:
        if len(_compiled) > 512:
            _compiled.clear()
        qs = _evaluation_queryset(SENTINEL_PROFILE, candidates, SENTINEL_NOW)
        sql, params = qs.query.sql_with_params()
        compiled = _compiled[key] = (sql, list(params))
    sql, template = compiled
    params = [
        now + (p - SENTINEL_NOW)
        if isinstance(p, dt.datetime) and p.year >= 8000
        else profile_id
        if type(p) is int and p == SENTINEL_PROFILE
        else p
        for p in template
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        names = [column[0] for column in cursor.description]
    if row is None:  # merged away: in no segment
        return {}
    return {int(name[1:]): bool(value) for name, value in zip(names, row, strict=True)}


def _evaluation_queryset(
    profile_id: int, candidates: list[IndexedSegment], now: dt.datetime
) -> Any:
    annotations = {
        f"s{entry.id}": ExpressionWrapper(
            selectors.definition_q(entry.definition, now=now, profile_id=profile_id),
            output_field=BooleanField(),
        )
        for entry in candidates
    }
    return base_profiles().filter(pk=profile_id).annotate(**annotations).values(*annotations)


def _evaluate_uncached(
    profile_id: int, candidates: list[IndexedSegment], now: dt.datetime
) -> dict[int, bool]:
    annotations = {
        f"s{entry.id}": ExpressionWrapper(
            selectors.definition_q(entry.definition, now=now, profile_id=profile_id),
            output_field=BooleanField(),
        )
        for entry in candidates
    }
    row = base_profiles().filter(pk=profile_id).annotate(**annotations).values(*annotations).first()
    if row is None:  # merged away: in no segment
        return {}
    return {int(key[1:]): bool(value) for key, value in row.items()}


def _apply_profile_changes(
    profile_id: int, changes: list[MembershipChangeSet], now: dt.datetime
) -> None:
    with transaction.atomic():
        segments = {s.pk: s for s in Segment.objects.filter(pk__in=[c.segment_id for c in changes])}
        for change in changes:
            segment = segments[change.segment_id]
            if change.entered:
                _, created = SegmentMembership.objects.get_or_create(
                    segment=segment, profile_id=profile_id, defaults={"entered_at": now}
                )
                if created:
                    membership_changes_record(segment, [profile_id], [], cause="realtime", at=now)
            else:
                deleted, _ = SegmentMembership.objects.filter(
                    segment=segment, profile_id=profile_id
                ).delete()
                if deleted:
                    membership_changes_record(segment, [], [profile_id], cause="realtime", at=now)


def segment_index_invalidate() -> None:
    # A fresh random version, never a counter: after a cache flush a counter starts again at
    # a number some worker's stale index may still carry.
    cache.set(INDEX_VERSION_KEY, uuid.uuid4().hex, None)
