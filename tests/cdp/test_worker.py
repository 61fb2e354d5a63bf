"""A real Celery worker, on Redis and the test database, processes a batch end to end."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from cdp.celery import app as celery_app
from identity.models import Identity
from profiles.models import Event, Profile
from profiles.tasks import events_process_task
from tests.identity.factories import event_build, events_store

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.REDIS_URL,
        reason="a real worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
]


def _database_url() -> str:
    """The test database (pytest-django renamed it) as a URL for the worker's settings."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db):
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ingest")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DB_CONN_MAX_AGE": "0",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cdp",
            "worker",
            "-Q",
            "ingest",
            "--concurrency",
            "2",
            "--pool",
            "prefork",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        celery_app.conf.task_always_eager = True


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
