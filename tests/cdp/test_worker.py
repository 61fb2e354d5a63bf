"""A real Celery worker, on Redis and the test database, processes a batch end to end."""

import subprocess
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from cdp.tasks import events_process_task
from identity.models import Identity
from profiles.models import Event, Profile
from tests.conftest import celery_worker
from tests.identity.factories import event_build, events_store

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.REDIS_URL,
        reason="a real worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
]


@pytest.fixture
def worker(transactional_db):
    with celery_worker(queue="ingest", concurrency=2, pool="prefork") as process:
        yield process


def _wait_until_processed(ids: list[int], worker: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Event.objects.filter(pk__in=ids, processed_at__isnull=True).exists():
            return
        if worker.poll() is not None:
            output = worker.stdout.read().decode(errors="replace") if worker.stdout else ""
            pytest.fail(f"the worker exited with {worker.returncode}:\n{output[-3000:]}")
        time.sleep(0.2)
    pending = Event.objects.filter(pk__in=ids, processed_at__isnull=True).count()
    pytest.fail(f"{pending} of {len(ids)} events still unprocessed after {timeout}s")


def test_a_real_worker_processes_queued_batches_into_profiles(worker, source):
    people = 20
    events = []
    for person in range(people):
        anon = f"anon-{person}"
        events.append(event_build(source, "page", anonymous_id=anon, at=timedelta(minutes=person)))
        events.append(
            event_build(
                source,
                "identify",
                anonymous_id=anon,
                user_id=f"user-{person}",
                traits={"email": f"Person{person}@Example.com", "name": f"Person {person}"},
                at=timedelta(minutes=person, seconds=30),
            )
        )
        events.append(
            event_build(
                source,
                event="Order Completed",
                user_id=f"user-{person}",
                properties={"revenue": 10 + person},
                at=timedelta(minutes=person, seconds=50),
            )
        )
    ids = events_store(events)
    # Several tasks, one of them sent twice (a redelivery): both must be harmless.
    for start in range(0, len(ids), 15):
        events_process_task.delay(ids[start : start + 15])
    events_process_task.delay(ids[:15])

    _wait_until_processed(ids, worker)

    profiles = Profile.objects.filter(merged_into__isnull=True)
    assert profiles.count() == people
    assert not Event.objects.filter(pk__in=ids, profile__isnull=True).exists()
    for person in range(people):
        profile = Profile.objects.get(
            identities__kind="user_id", identities__value=f"user-{person}"
        )
        assert set(profile.identities.values_list("kind", "value")) == {
            ("anonymous_id", f"anon-{person}"),
            ("user_id", f"user-{person}"),
            ("email", f"person{person}@example.com"),
        }
        assert profile.traits["name"] == f"Person {person}"
        assert profile.event_count == 3
        assert profile.order_count == 1
        assert profile.revenue == 10 + person
    assert Identity.objects.count() == people * 3
