"""profile_merge: one person found under two profiles becomes one."""

from datetime import timedelta
from decimal import Decimal

import pytest

from cdp import pipeline
from identity.models import Identity
from identity.services import profile_merge
from profiles.models import Event, Profile
from profiles.services import profile_traits_patch
from tests.identity.factories import event_build, events_store

pytestmark = pytest.mark.django_db


def build_person(source, user_id: str, events: list[dict]) -> Profile:
    ids = events_store([event_build(source, user_id=user_id, **kwargs) for kwargs in events])
    pipeline.events_process(event_ids=ids)
    return Profile.objects.get(identities__kind="user_id", identities__value=user_id)


def test_merge_moves_everything_to_the_survivor_and_keeps_the_duplicate_row_empty(source):
    survivor = build_person(
        source,
        "u-old",
        [
            {"type": "identify", "traits": {"name": "Ann", "plan": "free"}, "at": timedelta(0)},
            {
                "event": "Order Completed",
                "properties": {"revenue": 10},
                "at": timedelta(minutes=5),
            },
        ],
    )
    duplicate = build_person(
        source,
        "u-new",
        [
            {"type": "identify", "traits": {"plan": "pro"}, "at": timedelta(days=1)},
            {
                "event": "Order Completed",
                "properties": {"revenue": 5.5},
                "at": timedelta(days=1, minutes=1),
            },
        ],
    )

    result = profile_merge(survivor=survivor, duplicate=duplicate, reason="test")

    assert result == survivor
    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    assert survivor.traits == {"name": "Ann", "plan": "pro"}
    assert survivor.event_count == 4
    assert survivor.session_count == 2
    assert survivor.order_count == 2
    assert survivor.revenue == Decimal("15.50")
    assert survivor.last_order_at == Event.objects.get(properties__revenue=5.5).timestamp
    assert set(survivor.identities.values_list("value", flat=True)) == {"u-old", "u-new"}
    assert Event.objects.filter(profile=survivor).count() == 4

    assert duplicate.merged_into == survivor
    assert duplicate.traits == {} and duplicate.context == {}
    assert duplicate.event_count == duplicate.order_count == 0
    assert not Identity.objects.filter(profile=duplicate).exists()


def test_profiles_merged_into_the_duplicate_now_point_at_the_survivor(source):
    a = build_person(source, "a", [{"at": timedelta(0)}])
    b = build_person(source, "b", [{"at": timedelta(1)}])
    c = build_person(source, "c", [{"at": timedelta(2)}])
    profile_merge(survivor=b, duplicate=c)
    profile_merge(survivor=a, duplicate=b)

    c.refresh_from_db()
    assert c.merged_into == a
    # Later events for any of the three identifiers land on the survivor.
    ids = events_store([event_build(source, user_id="c", at=timedelta(3))])
    pipeline.events_process(event_ids=ids)
    assert Event.objects.get(pk=ids[0]).profile == a


def test_a_profile_cannot_be_merged_into_itself_or_merged_twice(source):
    a = build_person(source, "a", [{}])
    b = build_person(source, "b", [{}])
    with pytest.raises(ValueError, match="itself"):
        profile_merge(survivor=a, duplicate=a)
    profile_merge(survivor=a, duplicate=b)
    with pytest.raises(ValueError, match="already merged"):
        profile_merge(survivor=a, duplicate=b)


def test_a_trait_edited_through_the_api_is_not_undone_by_an_older_event(source):
    profile = build_person(source, "u1", [{"type": "identify", "traits": {"plan": "free"}}])
    profile_traits_patch(profile=profile, changes={"plan": "gold", "nickname": None})

    # An identify from long ago arrives late.
    ids = events_store(
        [
            event_build(
                source,
                "identify",
                user_id="u1",
                traits={"plan": "trial", "nickname": "x"},
                at=timedelta(days=-30),
            )
        ]
    )
    pipeline.events_process(event_ids=ids)

    profile.refresh_from_db()
    assert profile.traits["plan"] == "gold"
    assert "nickname" not in profile.traits
