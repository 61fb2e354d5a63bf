"""Consent on merge (consent.services.consents_merge, called by identity's merge services): a
withdrawal or a missing consent on either side wins over a grant; an unmerge gives the survivor
its own decision back unless it decided again since; suppressions follow the identifiers."""

import pytest
from django.utils import timezone

from consent.models import Purpose, Suppression
from consent.selectors import consent_allows
from consent.services import consent_filter_resolved, consent_record
from identity.services import profile_unmerge, profiles_merge
from profiles.models import Event, Profile


@pytest.fixture
def purposes(db):
    Purpose.objects.get_or_create(
        code="m_email", defaults={"name": "Email", "granted_by_default": False}
    )
    Purpose.objects.get_or_create(
        code="m_stats", defaults={"name": "Stats", "granted_by_default": True}
    )


def test_withdrawal_or_missing_consent_wins_over_a_grant_and_unmerge_restores(purposes):
    survivor = Profile.objects.create()
    duplicate = Profile.objects.create()
    consent_record(profile=survivor, purpose="m_email", granted=True, source="api")
    consent_record(profile=survivor, purpose="m_stats", granted=True, source="api")
    consent_record(profile=duplicate, purpose="m_stats", granted=False, source="sdk")
    # m_email: the duplicate never consented (default: not granted) → missing wins.
    record = profiles_merge(first=survivor, second=duplicate)
    assert record.survivor_id == survivor.pk
    assert not consent_allows(profile=survivor, purpose="m_email")
    assert not consent_allows(profile=survivor, purpose="m_stats")
    assert sorted(record.hooks["consent"]["withdrawn"]) == ["m_email", "m_stats"]

    profile_unmerge(merge_record=record, actor=None)
    assert consent_allows(profile=survivor, purpose="m_email")
    assert consent_allows(profile=survivor, purpose="m_stats")
    assert not consent_allows(profile=duplicate, purpose="m_stats")


def test_grants_on_both_sides_stay_granted(purposes):
    survivor, duplicate = Profile.objects.create(), Profile.objects.create()
    for profile in (survivor, duplicate):
        consent_record(profile=profile, purpose="m_email", granted=True, source="api")
    record = profiles_merge(first=survivor, second=duplicate)
    assert consent_allows(profile=survivor, purpose="m_email")
    assert "m_email" not in record.hooks["consent"]["withdrawn"]


def test_a_suppression_of_the_duplicate_applies_to_the_survivor_until_unmerged(purposes):
    survivor, duplicate = Profile.objects.create(), Profile.objects.create()
    Suppression.objects.create(identifier_hash="h" * 64, kind="email", profile_id=duplicate.pk)
    record = profiles_merge(first=survivor, second=duplicate)
    assert not consent_allows(profile=survivor, purpose="m_stats")  # suppressed: nothing allowed
    profile_unmerge(merge_record=record, actor=None)
    assert Suppression.objects.get().profile_id == duplicate.pk
    assert consent_allows(profile=survivor, purpose="m_stats")


def test_unmerge_leaves_a_decision_the_survivor_made_since_the_merge(purposes):
    survivor, duplicate = Profile.objects.create(), Profile.objects.create()
    consent_record(profile=survivor, purpose="m_email", granted=True, source="api")
    consent_record(profile=survivor, purpose="m_stats", granted=True, source="api")
    consent_record(profile=duplicate, purpose="m_stats", granted=False, source="sdk")
    record = profiles_merge(first=survivor, second=duplicate)
    # The person withdraws email marketing themselves while the profiles are one.
    consent_record(profile=survivor, purpose="m_email", granted=False, source="ui")

    profile_unmerge(merge_record=record, actor=None)
    assert not consent_allows(profile=survivor, purpose="m_email")
    assert consent_allows(profile=survivor, purpose="m_stats")


def test_a_suppression_that_follows_a_merge_stops_the_survivors_events_at_once(purposes, source):
    survivor, duplicate = Profile.objects.create(), Profile.objects.create()
    Suppression.objects.create(identifier_hash="h" * 64, kind="email", profile_id=duplicate.pk)
    event = Event.objects.create(
        source=source,
        message_id="after-merge",
        type="track",
        event="Viewed",
        timestamp=timezone.now(),
        received_at=timezone.now(),
        profile=survivor,
    )
    assert consent_filter_resolved(resolved=[(survivor, [event])]).resolved == [(survivor, [event])]

    profiles_merge(first=survivor, second=duplicate)
    assert consent_filter_resolved(resolved=[(survivor, [event])]).resolved == [(survivor, [])]
    assert not Event.objects.filter(pk=event.pk).exists()
