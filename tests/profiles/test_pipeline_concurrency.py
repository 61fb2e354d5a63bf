"""Many workers processing batches about the same new people at once, on real connections."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections

from cdp import pipeline
from identity.models import Identity
from profiles.models import Event, Profile
from tests.identity.factories import event_build, events_store

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL"
)


def run_in_parallel(batches: list[list[int]]) -> None:
    """Process each batch in its own thread and database connection, all starting together."""
    barrier = threading.Barrier(len(batches))
    errors: list[BaseException] = []

    def work(ids: list[int]) -> None:
        try:
            barrier.wait()
            pipeline.events_process(event_ids=ids)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(ids,)) for ids in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def test_parallel_batches_about_one_new_person_make_exactly_one_profile(transactional_db, source):
    batches = []
    for worker in range(8):
        batches.append(
            events_store(
                [
                    event_build(
                        source, "page", anonymous_id="anon-1", at=timedelta(seconds=worker)
                    ),
                    event_build(
                        source,
                        "identify",
                        anonymous_id="anon-1",
                        user_id="user-1",
                        traits={"email": "ann@example.com", "visits": worker},
                        at=timedelta(seconds=worker, milliseconds=500),
                    ),
                    event_build(
                        source,
                        event="Product Viewed",
                        user_id="user-1",
                        context={"device": {"id": f"device-{worker % 2}"}},
                        at=timedelta(seconds=worker, milliseconds=700),
                    ),
                ]
            )
        )

    run_in_parallel(batches)

    (profile,) = Profile.objects.filter(merged_into__isnull=True)
    assert Profile.objects.count() == 1, "no duplicate profile, not even a merged one"
    assert set(profile.identities.values_list("kind", "value")) == {
        ("anonymous_id", "anon-1"),
        ("user_id", "user-1"),
        ("email", "ann@example.com"),
        ("device_id", "device-0"),
        ("device_id", "device-1"),
    }
    assert profile.event_count == 24
    assert profile.traits["visits"] == 7  # the latest identify wins whoever ran last
    assert set(Event.objects.values_list("profile_id", flat=True)) == {profile.pk}
    assert not Event.objects.filter(processed_at__isnull=True).exists()


def test_parallel_overlapping_batches_about_many_people_keep_one_profile_each(
    transactional_db, source
):
    people = 30
    batches = []
    for worker in range(6):
        events = []
        for person in range(people):
            # Each worker sees the person under a different pair of identifiers, all of them
            # linked through user id: the pieces must end up on one profile, none lost.
            events.append(
                event_build(
                    source,
                    "identify",
                    user_id=f"user-{person}",
                    anonymous_id=f"anon-{person}-{worker}",
                    traits={"phone": f"+1 415 555 {person:04d}"},
                    at=timedelta(minutes=person, seconds=worker),
                )
            )
        batches.append(events_store(events))
    # The same events also arrive twice (a redelivered task) in parallel with the first run.
    batches.extend(batches[:2])

    run_in_parallel(batches)

    assert Profile.objects.filter(merged_into__isnull=True).count() == people
    assert not Event.objects.filter(processed_at__isnull=True).exists()
    for person in range(people):
        profile = Profile.objects.get(identities__value=f"user-{person}")
        identities = set(profile.identities.values_list("kind", "value"))
        assert identities == {("user_id", f"user-{person}"), ("phone", f"+1415555{person:04d}")} | {
            ("anonymous_id", f"anon-{person}-{worker}") for worker in range(6)
        }
        assert profile.event_count == 6
    assert Identity.objects.count() == people * 8
    # Every event is counted exactly once, on a live profile.
    assert sum(Profile.objects.values_list("event_count", flat=True)) == people * 6
