"""Processing accepted events into unified profiles (cdp.pipeline), inline on the test database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cdp import pipeline
from cdp.tasks import events_process_pending_task, events_process_task
from identity.models import Identity
from profiles.models import Event, Profile
from profiles.selectors import profile_computed_features
from profiles.services import events as claiming
from tests.identity.factories import event_build, event_make, events_store

pytestmark = pytest.mark.django_db


def process(*events: Event) -> int:
    return pipeline.events_process(event_ids=[e.pk for e in events])


def identities_of(profile: Profile) -> set[tuple[str, str]]:
    return set(profile.identities.values_list("kind", "value"))


def live_profiles() -> list[Profile]:
    return list(Profile.objects.filter(merged_into__isnull=True))


def test_a_track_from_a_new_visitor_creates_a_profile_with_the_anonymous_id(source):
    event = event_make(source, event="Product Viewed", anonymous_id="anon-1")

    assert process(event) == 1

    event.refresh_from_db()
    assert event.processed_at is not None
    profile = event.profile
    assert identities_of(profile) == {("anonymous_id", "anon-1")}
    assert profile.event_count == 1
    assert profile.first_seen == profile.last_seen == event.timestamp


def test_identify_with_anonymous_and_user_id_joins_them_on_one_profile(source):
    browse = event_make(source, event="Product Viewed", anonymous_id="anon-1")
    process(browse)
    identify = event_make(
        source,
        "identify",
        anonymous_id="anon-1",
        user_id="user-1",
        traits={"email": " Ann@Example.COM ", "name": "Ann", "phone": "(415) 555-0100"},
        at=timedelta(minutes=5),
    )
    process(identify)
    later = event_make(source, event="Product Added", user_id="user-1", at=timedelta(minutes=9))
    process(later)

    profiles = live_profiles()
    assert len(profiles) == 1
    profile = profiles[0]
    assert identities_of(profile) == {
        ("anonymous_id", "anon-1"),
        ("user_id", "user-1"),
        ("email", "ann@example.com"),
        ("phone", "+14155550100"),
    }
    assert profile.traits["name"] == "Ann"
    assert profile.event_count == 3
    assert set(Event.objects.values_list("profile_id", flat=True)) == {profile.pk}


def test_alias_merges_two_existing_profiles_into_the_oldest(source):
    old = event_make(source, "identify", user_id="user-7", traits={"plan": "free"}, at=None)
    new = event_make(
        source,
        "identify",
        anonymous_id="anon-9",
        traits={"plan": "pro", "city": "Oslo"},
        at=timedelta(days=1),
    )
    process(old)
    process(new)
    assert len(live_profiles()) == 2
    older = Event.objects.get(pk=old.pk).profile
    newer = Event.objects.get(pk=new.pk).profile

    # The visitor anon-9 logs in as user-7: alias(previousId=anon-9, userId=user-7).
    alias = event_make(source, "alias", user_id="user-7", previousId="anon-9", at=timedelta(days=2))
    process(alias)

    newer.refresh_from_db()
    older.refresh_from_db()
    assert newer.merged_into == older
    assert newer.traits == {} and newer.event_count == 0 and not newer.identities.exists()
    assert identities_of(older) == {("user_id", "user-7"), ("anonymous_id", "anon-9")}
    # The most recently set value of each trait wins.
    assert older.traits == {"plan": "pro", "city": "Oslo"}
    assert older.event_count == 3
    assert set(Event.objects.values_list("profile_id", flat=True)) == {older.pk}


def test_an_event_whose_identifiers_belong_to_two_profiles_merges_them(source):
    a = event_make(source, user_id="u-a", event="Signed Up")
    b = event_make(
        source, "identify", anonymous_id="x", traits={"email": "b@example.com"}, at=timedelta(1)
    )
    process(a)
    process(b)
    both = event_make(
        source,
        "identify",
        user_id="u-a",
        traits={"email": "B@example.com"},
        at=timedelta(days=2),
    )
    process(both)

    (profile,) = live_profiles()
    assert identities_of(profile) == {
        ("user_id", "u-a"),
        ("anonymous_id", "x"),
        ("email", "b@example.com"),
    }
    assert profile.first_seen == a.timestamp


def test_processing_a_batch_twice_changes_nothing(source):
    events = [
        event_build(source, event="Order Completed", user_id="u1", properties={"revenue": 10}),
        event_build(source, "identify", user_id="u1", traits={"name": "A"}, at=timedelta(1)),
        event_build(source, event="Product Viewed", anonymous_id="a2", at=timedelta(2)),
    ]
    ids = events_store(events)

    assert pipeline.events_process(event_ids=ids) == 3
    before = list(Profile.objects.order_by("pk").values())
    identities = list(Identity.objects.order_by("pk").values())
    marked = list(Event.objects.order_by("pk").values_list("processed_at", "profile_id"))

    assert pipeline.events_process(event_ids=ids) == 0
    assert list(Profile.objects.order_by("pk").values()) == before
    assert list(Identity.objects.order_by("pk").values()) == identities
    assert list(Event.objects.order_by("pk").values_list("processed_at", "profile_id")) == marked


def test_an_older_identify_processed_after_a_newer_one_does_not_overwrite_traits(source):
    newer = event_make(
        source, "identify", user_id="u1", traits={"plan": "pro"}, at=timedelta(hours=2)
    )
    older = event_make(
        source, "identify", user_id="u1", traits={"plan": "free", "age": 30}, at=timedelta(0)
    )
    process(newer)
    process(older)

    profile = Profile.objects.get()
    assert profile.traits == {"plan": "pro", "age": 30}
    assert profile.first_seen == older.timestamp
    assert profile.last_seen == newer.timestamp


def test_events_of_one_chunk_apply_in_event_time_order_whatever_their_id_order(source):
    ids = events_store(
        [
            event_build(source, "identify", user_id="u1", traits={"plan": "c"}, at=timedelta(3)),
            event_build(source, "identify", user_id="u1", traits={"plan": "a"}, at=timedelta(1)),
            event_build(source, "identify", user_id="u1", traits={"plan": "b"}, at=timedelta(2)),
        ]
    )
    pipeline.events_process(event_ids=ids)
    assert Profile.objects.get().traits["plan"] == "c"


def test_group_traits_are_kept_per_group_under_groups(source):
    group = event_make(source, "group", user_id="u1", traits={"name": "Acme", "plan": "enterprise"})
    group.payload["groupId"] = "g-1"
    group.save()
    process(group)

    profile = Profile.objects.get()
    assert profile.traits == {"groups": {"g-1": {"name": "Acme", "plan": "enterprise"}}}


def test_orders_sessions_and_context_are_computed(source):
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
    )
    context = {
        "userAgent": ua,
        "locale": "nb-NO",
        "timezone": "Europe/Oslo",
        "ip": "203.0.113.9",
        "campaign": {"name": "spring", "source": "newsletter"},
        "library": {"name": "analytics.js", "version": "1.84.3"},
    }
    ids = events_store(
        [
            event_build(source, "page", user_id="u1", at=timedelta(0), context=context),
            event_build(
                source,
                event="Order Completed",
                user_id="u1",
                at=timedelta(minutes=10),
                properties={"revenue": "19.90", "total": 25},
            ),
            # 2 hours later: a second session.
            event_build(
                source,
                event="Order Completed",
                user_id="u1",
                at=timedelta(hours=2),
                properties={"total": 5.5},
            ),
            event_build(
                source,
                event="Order Completed",
                user_id="u1",
                at=timedelta(hours=2, minutes=1),
                properties={"products": [{"price": 2.5, "quantity": 2}, {"price": "1"}]},
            ),
            # Bots are stored and linked but change no computed feature.
            event_build(
                source,
                event="Order Completed",
                user_id="u1",
                at=timedelta(days=3),
                properties={"revenue": 1000},
                is_bot=True,
            ),
        ]
    )
    pipeline.events_process(event_ids=ids)

    profile = Profile.objects.get()
    assert profile.event_count == 4
    assert profile.session_count == 2
    assert profile.order_count == 3
    assert profile.revenue == Decimal("31.40")
    assert profile.first_order_at == datetime(2024, 5, 1, 12, 10, tzinfo=UTC)
    assert profile.last_order_at == datetime(2024, 5, 1, 14, 1, tzinfo=UTC)
    assert profile.last_seen == datetime(2024, 5, 1, 14, 1, tzinfo=UTC)
    assert profile.context["browser"]["name"] == "Mobile Safari"
    assert profile.context["os"]["name"] == "iOS"
    assert profile.context["device"]["type"] == "mobile"
    assert profile.context["locale"] == "nb-NO"
    assert profile.context["campaign"]["name"] == "spring"
    assert Event.objects.filter(profile=profile).count() == 5

    computed = profile_computed_features(profile, now=datetime(2024, 5, 11, 14, 1, tzinfo=UTC))
    assert computed["recency_days"] == 10
    assert computed["frequency"] == 3
    assert computed["lifetime_value"] == 31.4


def test_a_late_event_inside_a_gap_recounts_sessions(source):
    process(event_make(source, user_id="u1", event="A", at=timedelta(0)))
    process(event_make(source, user_id="u1", event="B", at=timedelta(minutes=50)))
    assert Profile.objects.get().session_count == 2
    # Arrives late, between the two: now the gaps are 25 minutes, one session.
    process(event_make(source, user_id="u1", event="C", at=timedelta(minutes=25)))
    profile = Profile.objects.get()
    assert profile.session_count == 1
    assert profile.event_count == 3


def test_session_ids_from_context_decide_sessions_when_present(source):
    ids = events_store(
        [
            event_build(source, user_id="u1", at=timedelta(0), context={"sessionId": 1}),
            event_build(source, user_id="u1", at=timedelta(minutes=1), context={"sessionId": 2}),
            event_build(source, user_id="u1", at=timedelta(hours=3), context={"sessionId": 2}),
        ]
    )
    pipeline.events_process(event_ids=ids)
    assert Profile.objects.get().session_count == 2


def test_device_ids_and_context_traits_emails_are_identities(source):
    event = event_make(
        source,
        anonymous_id="a1",
        context={"device": {"id": "dev-7"}, "traits": {"email": "c@example.com"}},
    )
    process(event)
    second = event_make(source, anonymous_id="a2", context={"device": {"id": "dev-7"}})
    process(second)

    (profile,) = live_profiles()
    assert identities_of(profile) == {
        ("anonymous_id", "a1"),
        ("anonymous_id", "a2"),
        ("device_id", "dev-7"),
        ("email", "c@example.com"),
    }


def test_an_unparsable_phone_is_not_an_identity(source):
    process(event_make(source, "identify", user_id="u1", traits={"phone": "call me maybe"}))
    assert identities_of(Profile.objects.get()) == {("user_id", "u1")}


def test_a_task_takes_on_the_oldest_other_pending_events_up_to_its_chunk(
    source, django_capture_on_commit_callbacks
):
    ids = events_store(
        [event_build(source, user_id=f"u{n}", event="Seen", at=timedelta(n)) for n in range(6)]
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.events_process(event_ids=[ids[4]], fill_to=3) == 3
    done = Event.objects.filter(processed_at__isnull=False).values_list("pk", flat=True)
    assert set(done) == {ids[0], ids[1], ids[4]}
    # Once committed, this process's next fill starts past what it took (the pending index
    # still lists the processed events until vacuum), and takes the rest.
    assert claiming._fill_floor == ids[1] + 1
    with django_capture_on_commit_callbacks(execute=True):
        assert pipeline.events_process(event_ids=[], fill_to=10) == 3
    assert not Event.objects.filter(processed_at__isnull=True).exists()


@pytest.fixture
def poisoned_last_stage(monkeypatch):
    """The pipeline's last stage fails on any chunk that holds a "Poison" event."""
    segments_stage = pipeline.segment_memberships_refresh

    def poisoned(*, resolved):
        if any(event.event == "Poison" for _, events in resolved for event in events):
            raise ValueError("a later stage failed on this event")
        return segments_stage(resolved=resolved)

    monkeypatch.setattr(pipeline, "segment_memberships_refresh", poisoned)


def test_a_chunk_that_fails_leaves_the_events_it_took_on_to_be_taken_again(
    source, poisoned_last_stage
):
    ids = events_store(
        [event_build(source, user_id=f"u{n}", event="Seen", at=timedelta(n)) for n in range(4)]
        + [event_build(source, user_id="u-bad", event="Poison")]
    )
    # The chunk (its own event and the ones it took on) fails and is split: its own event is
    # found at fault; the others are pending again, for their own tasks.
    assert pipeline.events_process(event_ids=[ids[4]], fill_to=5) == 0
    assert Event.objects.filter(processed_at__isnull=True).count() == 5
    assert pipeline.events_process(event_ids=ids[:4], fill_to=4) == 4
    assert list(Event.objects.filter(processed_at__isnull=True).values_list("pk", flat=True)) == [
        ids[4]
    ]


def test_the_tasks_process_events_and_the_pending_task_picks_up_lost_ones(source):
    fresh = event_make(source, anonymous_id="a1")
    assert events_process_task.delay([fresh.pk]).get() == 1

    lost = event_make(source, anonymous_id="a2")
    Event.objects.filter(pk=lost.pk).update(received_at=datetime.now(UTC) - timedelta(minutes=5))
    assert events_process_pending_task.delay().get() == 1
    lost.refresh_from_db()
    assert lost.processed_at is not None and lost.profile is not None


def test_an_event_that_cannot_be_processed_does_not_hold_back_the_others(
    source, caplog, poisoned_last_stage
):
    ids = events_store(
        [event_build(source, user_id=f"u{n}", event="Fine", at=timedelta(n)) for n in range(6)]
        + [event_build(source, user_id="u-bad", event="Poison")]
    )
    assert pipeline.events_process(event_ids=ids) == 6

    assert list(
        Event.objects.filter(processed_at__isnull=True).values_list("event", flat=True)
    ) == ["Poison"]
    assert Profile.objects.count() == 6
    assert "could not be processed and stays pending: ValueError" in caplog.text
    assert "u-bad" not in caplog.text
