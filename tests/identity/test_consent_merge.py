"""Consent on merge: a withdrawal or a missing consent on either side wins over a grant; an
unmerge gives the survivor its own decision back; suppressions follow the identifiers."""

import pytest

from consent.models import Purpose, Suppression
from consent.selectors import consent_allows
from consent.services import consent_record
from identity.services import profile_unmerge, profiles_merge
from profiles.models import Profile


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
