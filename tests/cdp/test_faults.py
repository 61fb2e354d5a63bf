"""Small versions of the faults `python -m bench faults` measures, on every run: Redis down,
database connections killed, a database outage, a backlog, many identifies of one new person
at once. Redis is a private server started here (the machine's Redis is shared); the database
faults touch only this test's own connections."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg2
import pytest
from django.db import connection, connections
from django.test import Client, override_settings

from bench import PrivateRedis, free_port
from cdp import pipeline
from cdp.celery import app as celery_app
from consent.services import suppression_cache, suppression_create
from identity.models import Identity
from profiles.ingestion import ingest_messages, sources
from profiles.models import Event, Profile

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the faults are PostgreSQL's and Redis's"
)

AUTH = {"HTTP_AUTHORIZATION": "Basic V1JJVEVfS0VZX3Rlc3QxMjM6"}  # WRITE_KEY_test123


@contextmanager
def private_redis_as_cache_and_broker() -> Iterator[PrivateRedis]:
    redis = PrivateRedis()
    redis.start()
    broker, eager = celery_app.conf.broker_url, celery_app.conf.task_always_eager
    caches = {"default": {"BACKEND": "cdp.cache.ResilientRedisCache", "LOCATION": redis.url}}
    try:
        with override_settings(CACHES=caches):
            celery_app.conf.broker_url = redis.url
            celery_app.conf.task_always_eager = False
            celery_app._pool = None  # the producer pool of the shared broker
            yield redis
    finally:
        redis.kill()
        celery_app.conf.broker_url, celery_app.conf.task_always_eager = broker, eager
        celery_app._pool = None


def post_batch(client: Client, n: int, prefix: str):
    batch = [
        {"type": "track", "userId": f"u{i}", "event": "Clicked", "messageId": f"{prefix}-{i}"}
        for i in range(n)
    ]
    return client.post("/v1/batch", {"batch": batch}, content_type="application/json", **AUTH)


def test_with_redis_down_ingestion_refuses_nothing_and_the_sweep_processes_it(
    transactional_db, source, client
):
    suppression_create(identifiers={"email": "gone@example.com"}, profile_ids=[], actor=None)
    with private_redis_as_cache_and_broker() as redis:
        assert post_batch(client, 3, "up").status_code == 200
        redis.kill()
        statuses = []
        for request in range(20):
            sources._local_sources.clear()  # the write key from the database, not memory
            suppression_cache.invalidate()  # the suppressions too
            statuses.append(post_batch(client, 5, f"down-{request}").status_code)
        assert statuses == [200] * 20
        assert Event.objects.filter(message_id__startswith="down-").count() == 100
        redis.start()  # empty, as a restarted Redis without persistence
        assert post_batch(client, 3, "back").status_code == 200
    # What the lost queue held (and the broker never got) the sweep processes.
    pipeline.events_process_pending(older_than=timedelta(0))
    assert not Event.objects.filter(processed_at__isnull=True).exists()
    assert Event.objects.count() == 106


def test_a_suppressed_subject_is_still_dropped_while_redis_is_down(
    transactional_db, source, client
):
    suppression_create(identifiers={"user_id": "u0"}, profile_ids=[], actor=None)
    with private_redis_as_cache_and_broker() as redis:
        redis.kill()
        suppression_cache.invalidate()
        assert post_batch(client, 2, "m").status_code == 200
    assert list(Event.objects.values_list("user_id", flat=True)) == ["u1"]


def own_backend_killed() -> None:
    """pg_terminate_backend on this test's connection, from another connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    settings = connection.settings_dict
    killer = psycopg2.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        password=settings["PASSWORD"] or None,
    )
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        killer.commit()
    finally:
        killer.close()


def test_a_write_on_a_connection_killed_since_the_last_request_is_retried_and_stored(
    transactional_db, source, client
):
    assert post_batch(client, 2, "before").status_code == 200
    own_backend_killed()
    response = post_batch(client, 2, "after")
    assert response.status_code == 200, response.content
    assert Event.objects.filter(message_id__startswith="after").count() == 2


@contextmanager
def database_unreachable() -> Iterator[None]:
    """A real outage for this test's connection: killed, and its server address made one
    where nothing listens, so reconnecting fails too."""
    own_backend_killed()
    settings = connection.settings_dict
    port = settings["PORT"]
    settings["PORT"] = str(free_port())
    try:
        yield
    finally:
        settings["PORT"] = port
        connection.close()


def test_a_database_outage_answers_503_json_with_retry_after_on_ingestion_and_the_api(
    transactional_db, source, admin_user
):
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    assert post_batch(client, 1, "warm").status_code == 200  # the write key is cached
    with database_unreachable():
        ingestion = post_batch(client, 1, "lost")
        api = client.get("/api/v1/profiles/")
        page = client.get("/profiles/")
    for response in (ingestion, api, page):
        assert response.status_code == 503
        assert response["Content-Type"] == "application/json"
        assert set(response.json()) == {"code", "message"}
        assert int(response["Retry-After"]) > 0


def test_healthz_says_when_the_sweep_last_ran_and_when_the_backlog_is_over_threshold(
    transactional_db, source, client
):
    body = client.get("/healthz").json()
    assert body["last_sweep_at"] is None
    assert body["sweep"].startswith("not running")
    celery_app.conf.task_always_eager = False  # nothing processes: a backlog builds up
    try:
        with override_settings(INGEST_BACKLOG_THRESHOLD=4), private_redis_as_cache_and_broker():
            assert post_batch(client, 5, "b").status_code == 200  # still accepted
            body = client.get("/healthz").json()
            metrics = client.get("/metrics").content.decode()
    finally:
        celery_app.conf.task_always_eager = True
    assert body["backlog"] == "over threshold" and body["pending_events"] == 5
    assert "cdp_processing_backpressure 1.0" in metrics
    pipeline.events_process_pending(older_than=timedelta(0))
    body = client.get("/healthz").json()
    assert body["backlog"] == "ok" and body["sweep"] == "ok" and body["last_sweep_at"]
    assert "cdp_processing_backpressure 0.0" in client.get("/metrics").content.decode()
    assert Event.objects.count() == 5


def test_twenty_concurrent_identifies_linking_one_new_person_make_one_profile(
    transactional_db, source
):
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def identify(n: int) -> None:
        try:
            barrier.wait()
            # Stored and (tasks inline) processed at once, in this thread's own connection.
            ingest_messages(
                source=source,
                messages=[
                    {
                        "type": "identify",
                        "messageId": f"identify-{n}",
                        "anonymousId": "anon-new",
                        "userId": "user-new",
                        "traits": {"email": "new@example.com", "visits": n},
                    }
                ],
            )
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=identify, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert Event.objects.filter(processed_at__isnull=False).count() == 20
    assert Profile.objects.filter(merged_into__isnull=True).count() == 1
    owners = Identity.objects.values_list("profile__merged_into", "profile_id")
    assert len({merged or own for merged, own in owners}) == 1
