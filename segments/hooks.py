"""The segments side of a profile merge, registered as an identity merge hook
(`identity.hooks`; see `SegmentsConfig.ready`).

On merge the duplicate leaves every segment, and the survivor, which now holds both profiles'
traits and events, is re-evaluated against every active segment: it enters where the merged
profile qualifies (keeping the duplicate's entry time where the duplicate was already in) and
leaves where it no longer does. On unmerge both profiles, rebuilt by then, are re-evaluated
the same way, each getting back its own entry times. Every enter and exit is recorded and
announced like any other (cause "merge").
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from identity.hooks import merge_hook_register
from profiles.models import Profile
from segments.models import MembershipChange, Segment, SegmentMembership
from segments.services import (
    membership_changes_record,
    segment_index,
    segment_memberships_evaluate,
)

HOOK_NAME = "segments"
CAUSE = MembershipChange.Cause.MERGE

# {segment id (str): entered at (ISO)}: a profile's memberships as the merge record keeps them.
Entered = dict[str, str]


def _memberships(profile_ids: list[int]) -> dict[int, Entered]:
    found: dict[int, Entered] = {pid: {} for pid in profile_ids}
    for profile_id, segment_id, entered_at in SegmentMembership.objects.filter(
        profile_id__in=profile_ids
    ).values_list("profile_id", "segment_id", "entered_at"):
        found[profile_id][str(segment_id)] = entered_at.isoformat()
    return found


def _changes_record(
    joins: dict[int, list[int]], leaves: dict[int, list[int]], now: dt.datetime
) -> None:
    """Record and announce enters/exits given as {segment id: [profile ids]}."""
    for segment in Segment.objects.filter(pk__in=joins.keys() | leaves.keys()).order_by("pk"):
        membership_changes_record(
            segment=segment,
            entered=joins.get(segment.pk, []),
            exited=leaves.get(segment.pk, []),
            cause=CAUSE,
            at=now,
        )


def _reconcile(profiles: dict[int, Entered], now: dt.datetime) -> None:
    """Make each profile's memberships of active segments match the definitions' verdicts;
    a segment entered again gets its time from the profile's `Entered` when it is there."""
    index = segment_index()
    if not index or not profiles:
        return
    current: dict[int, set[int]] = defaultdict(set)
    for profile_id, segment_id in SegmentMembership.objects.filter(
        profile_id__in=list(profiles), segment_id__in=[entry.id for entry in index]
    ).values_list("profile_id", "segment_id"):
        current[profile_id].add(segment_id)
    joins: dict[int, list[int]] = defaultdict(list)
    leaves: dict[int, list[int]] = defaultdict(list)
    created = []
    gone = Q(pk__in=[])
    # Every active segment for all these profiles, in one statement.
    inside = segment_memberships_evaluate(segments=index, profile_ids=profiles, now=now)
    for profile_id, entered in profiles.items():
        wanted = {entry.id for entry in index if (entry.id, profile_id) in inside}
        for segment_id in wanted - current[profile_id]:
            joins[segment_id].append(profile_id)
            at = parse_datetime(entered.get(str(segment_id), "")) or now
            created.append(
                SegmentMembership(segment_id=segment_id, profile_id=profile_id, entered_at=at)
            )
        for segment_id in current[profile_id] - wanted:
            leaves[segment_id].append(profile_id)
            gone |= Q(segment_id=segment_id, profile_id=profile_id)
    SegmentMembership.objects.filter(gone).delete()
    SegmentMembership.objects.bulk_create(created)
    _changes_record(joins, leaves, now)


def segment_memberships_merge_many(
    *, pairs: Sequence[tuple[Profile, Profile]]
) -> list[dict[str, Any]]:
    now = timezone.now()
    before = _memberships([profile.pk for pair in pairs for profile in pair])
    closed = SegmentMembership.objects.filter(profile_id__in=[d.pk for _, d in pairs])
    leaves: dict[int, list[int]] = defaultdict(list)
    for segment_id, profile_id in closed.values_list("segment_id", "profile_id"):
        leaves[segment_id].append(profile_id)
    closed.delete()
    _changes_record({}, leaves, now)
    survivors: dict[int, Entered] = {}
    for survivor, duplicate in pairs:
        ours, theirs = before[survivor.pk], before[duplicate.pk]
        # Where both were in, the earlier of the two entry times.
        survivors[survivor.pk] = {
            segment_id: min(
                [side[segment_id] for side in (ours, theirs) if segment_id in side],
                key=parse_datetime,
            )
            for segment_id in ours.keys() | theirs.keys()
        }
    _reconcile(survivors, now)
    return [{"survivor": before[s.pk], "duplicate": before[d.pk]} for s, d in pairs]


def segment_memberships_merge(*, survivor: Profile, duplicate: Profile) -> dict[str, Any]:
    return segment_memberships_merge_many(pairs=[(survivor, duplicate)])[0]


def segment_memberships_unmerge(
    *, survivor: Profile, duplicate: Profile, state: dict[str, Any]
) -> None:
    _reconcile(
        {survivor.pk: state.get("survivor", {}), duplicate.pk: state.get("duplicate", {})},
        timezone.now(),
    )


def register() -> None:
    merge_hook_register(
        segment_memberships_merge,
        name=HOOK_NAME,
        unmerge=segment_memberships_unmerge,
        merge_many=segment_memberships_merge_many,
    )
