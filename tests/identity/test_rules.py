"""Segment's identity resolution settings at ingest: per-kind limits and the priority of kinds,
applied by the exact-identity step of the real pipeline."""

from __future__ import annotations

from datetime import timedelta

from cdp import pipeline
from identity.models import CandidateStatus, Identity, MatchCandidate, MatchSettings
from profiles.models import Event, Profile
from tests.identity.factories import event_build, event_make, events_store


def rules(**values) -> None:
    MatchSettings.objects.update_or_create(pk=1, defaults=values)


def identify(source, *, at: int = 0, **kwargs) -> Event:
    event = event_make(source, "identify", at=timedelta(minutes=at), **kwargs)
    pipeline.events_process(event_ids=[event.pk])
    event.refresh_from_db()
    return event


def owner(kind: str, value: str) -> int:
    return Identity.objects.get(kind=kind, value=value).profile_id


def pending_pair() -> tuple[int, int]:
    candidate = MatchCandidate.objects.get(status=CandidateStatus.PENDING)
    assert candidate.reason == MatchCandidate.Reason.LIMIT
    return candidate.profile_a_id, candidate.profile_b_id


def test_a_second_user_on_a_shared_device_gets_a_profile_of_their_own(source):
    rules(kind_limits={"user_id": 1})
    ann = identify(source, user_id="u-ann", anonymous_id="device-1").profile
    bob_event = identify(source, at=1, user_id="u-bob", anonymous_id="device-1")
    # The user id ranks above the anonymous id: the event is Bob's, on a new profile; the
    # device stays with Ann, and the conflict waits for staff.
    assert bob_event.profile_id != ann.pk
    assert owner("user_id", "u-bob") == bob_event.profile_id
    assert owner("anonymous_id", "device-1") == ann.pk
    assert Profile.objects.filter(merged_into__isnull=False).count() == 0
    assert pending_pair() == tuple(sorted([ann.pk, bob_event.profile_id]))


def test_the_event_goes_to_the_profile_of_the_highest_priority_identifier(source):
    rules(kind_limits={"user_id": 1}, kind_priority=["email", "user_id", "anonymous_id"])
    by_email = identify(source, user_id="u-1", traits={"email": "ann@example.com"}).profile
    by_user = identify(source, at=1, user_id="u-2").profile
    event = identify(source, at=2, user_id="u-2", traits={"email": "Ann@Example.com"})
    assert event.profile_id == by_email.pk
    assert pending_pair() == tuple(sorted([by_email.pk, by_user.pk]))

    MatchCandidate.objects.all().delete()
    rules(kind_priority=["user_id", "email", "anonymous_id"])
    event = identify(source, at=3, user_id="u-2", traits={"email": "ann@example.com"})
    assert event.profile_id == by_user.pk
    assert pending_pair() == tuple(sorted([by_email.pk, by_user.pk]))
    assert owner("email", "ann@example.com") == by_email.pk


def test_an_identifier_over_its_limit_is_not_attached_but_the_event_is_kept(source):
    rules(kind_limits={"email": 1})
    profile = identify(source, user_id="u-1", traits={"email": "old@example.com"}).profile
    event = identify(source, at=1, user_id="u-1", traits={"email": "new@example.com"})
    assert event.profile_id == profile.pk
    assert not Identity.objects.filter(kind="email", value="new@example.com").exists()
    profile.refresh_from_db()
    assert profile.traits["email"] == "new@example.com"  # the value itself is not lost


def test_limits_hold_between_events_of_one_chunk(source):
    rules(kind_limits={"user_id": 1})
    first = event_build(source, "identify", user_id="u-1", anonymous_id="d", at=timedelta(0))
    second = event_build(
        source, "identify", user_id="u-2", anonymous_id="d", at=timedelta(minutes=1)
    )
    pipeline.events_process(event_ids=events_store([first, second]))
    one, two = owner("user_id", "u-1"), owner("user_id", "u-2")
    assert one != two
    assert owner("anonymous_id", "d") == one
    assert pending_pair() == tuple(sorted([one, two]))


def test_profiles_within_the_limits_still_merge_on_a_shared_identifier(source):
    rules(kind_limits={"user_id": 1})
    anonymous = identify(source, anonymous_id="d-1", traits={"firstName": "Ann"}).profile
    known = identify(source, at=1, user_id="u-1", traits={"email": "ann@example.com"}).profile
    event = identify(source, at=2, anonymous_id="d-1", traits={"email": "ann@example.com"})
    survivor = min([anonymous, known], key=lambda p: p.first_seen)
    assert event.profile_id == survivor.pk
    assert Profile.objects.filter(merged_into=survivor).count() == 1
    assert not MatchCandidate.objects.exists()


def test_without_limits_every_shared_identifier_merges(source):
    ann = identify(source, user_id="u-1", anonymous_id="d").profile
    identify(source, at=1, user_id="u-2", anonymous_id="d")
    assert owner("user_id", "u-2") == ann.pk
    assert not MatchCandidate.objects.exists()
