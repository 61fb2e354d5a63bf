"""Segment memberships follow profile merges (identity's merge hook): the duplicate's close
with history, the survivor is re-evaluated, and an unmerge gives both profiles theirs back."""

from __future__ import annotations

import datetime as dt

import pytest

from cdp import pipeline
from identity.models import MergeRecord
from identity.services import profile_unmerge
from profiles.models import Event, Profile
from segments import services
from segments.models import MembershipChange, SegmentMembership
from segments.signals import segment_membership_changed
from tests.identity.factories import event_make
from tests.segments.conftest import NOW

pytestmark = pytest.mark.django_db


def process(source, type: str, minutes: int, **kwargs) -> Event:
    event = event_make(source, type, at=dt.timedelta(minutes=minutes), **kwargs)
    pipeline.events_process(event_ids=[event.pk])
    event.refresh_from_db()
    return event


def members(profile: Profile) -> dict[int, dt.datetime]:
    return dict(
        SegmentMembership.objects.filter(profile=profile).values_list("segment_id", "entered_at")
    )


def test_memberships_follow_a_merge_through_the_pipeline_and_come_back_on_unmerge(
    source, django_capture_on_commit_callbacks
):
    segments = {
        name: services.segment_create(name=name, definition=definition)
        for name, definition in {
            "pro": {"trait": "plan", "op": "eq", "value": "pro"},
            "leeds": {"trait": "city", "op": "eq", "value": "Leeds"},
            "no_plan": {"trait": "plan", "op": "not_exists"},
            "viewed_twice": {"event": "Viewed", "count": {"op": "gte", "value": 2}},
        }.items()
    }
    ids = {name: segment.pk for name, segment in segments.items()}
    ann = process(source, "identify", 0, user_id="u-ann", traits={"plan": "pro"}).profile
    bea = process(source, "identify", 5, anonymous_id="anon-b", traits={"city": "Leeds"}).profile
    process(source, "track", 6, user_id="u-ann", event="Viewed")
    process(source, "track", 7, anonymous_id="anon-b", event="Viewed")
    for segment in segments.values():
        services.segment_refresh(segment=segment, now=NOW)
    before = members(ann), members(bea)
    assert set(before[0]) == {ids["pro"]}
    assert set(before[1]) == {ids["leeds"], ids["no_plan"]}

    announced = []

    def listener(sender, **kwargs):
        announced.append((kwargs["segment"].pk, kwargs["entered"], kwargs["exited"]))

    segment_membership_changed.connect(listener)
    try:
        # One event ties the two together: the pipeline merges Bea into Ann (oldest first).
        with django_capture_on_commit_callbacks(execute=True):
            process(source, "identify", 10, user_id="u-ann", anonymous_id="anon-b")
    finally:
        segment_membership_changed.disconnect(listener)
    bea.refresh_from_db()
    assert bea.merged_into_id == ann.pk
    assert members(bea) == {}
    after = members(ann)
    # Moved with its entry time; newly qualified on the merged timeline; no_plan not for Ann.
    assert set(after) == {ids["pro"], ids["leeds"], ids["viewed_twice"]}
    assert after[ids["leeds"]] == before[1][ids["leeds"]]
    assert after[ids["pro"]] == before[0][ids["pro"]]
    history = set(
        MembershipChange.objects.filter(cause="merge").values_list(
            "segment_id", "profile_id", "kind"
        )
    )
    assert history == {
        (ids["leeds"], bea.pk, "exit"),
        (ids["no_plan"], bea.pk, "exit"),
        (ids["leeds"], ann.pk, "enter"),
        (ids["viewed_twice"], ann.pk, "enter"),
    }
    assert (ids["viewed_twice"], [ann.pk], []) in announced
    assert (ids["no_plan"], [], [bea.pk]) in announced

    record = MergeRecord.objects.get(survivor=ann, duplicate=bea)
    profile_unmerge(merge_record=record, actor=None)
    assert (members(ann), members(bea)) == before
    assert MembershipChange.objects.filter(cause="merge").count() == 4 + 4
