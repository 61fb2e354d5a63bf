"""Processing benchmark: Celery workers turn a backlog of accepted events into profiles.

What it does, on a dedicated database (`cdp_bench_process`, dropped and migrated first):
1. stores BENCH_PROCESS_EVENTS demo-shop messages through the ingestion service (not timed) and
   empties the queue, so the events wait unprocessed;
2. starts a Celery worker on the `ingest` queue (prefork, BENCH_CELERY_WORKERS processes) and
   waits until it answers;
3. queues one `events_process_task` per 100 events, as ingestion does for batches of 100, and
   times until every event has `processed_at`: processed events/s.
Ingestion is not running meanwhile (the ingest bench measures both together, end to end).

Environment: BENCH_PROCESS_DATABASE_URL (postgres://postgres@127.0.0.1:5432/cdp_bench_process),
BENCH_REDIS_URL (redis://127.0.0.1:6379/2; its ingest queue is emptied), BENCH_PROCESS_EVENTS
(30000), BENCH_CELERY_WORKERS (2), BENCH_PROCESS_TIMEOUT (300 s), BENCH_PROCESS_SEGMENTS (0; 1
makes the 12 segments of the segments bench's real-time figure active, so the real-time
segments stage does real work).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import database_recreate

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_PROCESS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench_process"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
EVENTS = int(os.environ.get("BENCH_PROCESS_EVENTS", "30000"))
WORKERS = int(os.environ.get("BENCH_CELERY_WORKERS", "2"))
TIMEOUT = float(os.environ.get("BENCH_PROCESS_TIMEOUT", "300"))
SEGMENTS = os.environ.get("BENCH_PROCESS_SEGMENTS", "0") == "1"
TASK_EVENTS = 100
TARGET = 3000


def _child() -> None:
    import django

    django.setup()
    from datetime import UTC, datetime

    from django.core.management import call_command

    from access.services import source_create
    from cdp.celery import app as celery_app
    from cdp.tasks import events_process_task
    from profiles.demo import demo_messages
    from profiles.ingestion import ingest_messages
    from profiles.models import Event, Profile

    call_command("migrate", verbosity=0)
    celery_app.conf.task_always_eager = False
    if SEGMENTS:
        from bench.segments import REALTIME_DEFINITIONS
        from segments import services as segment_services
        from segments.models import Segment

        for number, definition in enumerate(REALTIME_DEFINITIONS, start=1):
            # Not segment_create: its first refresh is not what is measured here.
            deps = segment_services.segment_definition_check(definition=definition)
            Segment.objects.create(
                name=f"bench {number}", definition=definition, dependencies=deps.as_dict()
            )
        segment_services.segment_index_invalidate()
    source = source_create(name="bench").record
    batch: list[dict] = []
    stored = 0
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for message in demo_messages(profiles=EVENTS, seed=7, now=now):
        batch.append(message)
        if len(batch) == 500:
            stored += ingest_messages(source=source, messages=batch).accepted
            batch = []
        if stored + len(batch) >= EVENTS:
            break
    if batch:
        stored += ingest_messages(source=source, messages=batch).accepted
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ingest")
    ids = list(Event.objects.order_by("id").values_list("id", flat=True))
    print(f"stored {len(ids)} events (not timed)", flush=True)

    worker = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "cdp", "worker", "-Q", "ingest"),
            *("--concurrency", str(WORKERS), "--without-gossip", "--without-mingle"),
            *("-l", "warning"),
        ],
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not celery_app.control.ping(timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                sys.exit("the Celery worker did not start")
        started = time.monotonic()
        for start in range(0, len(ids), TASK_EVENTS):
            events_process_task.delay(ids[start : start + TASK_EVENTS])
        pending = len(ids)
        while pending and time.monotonic() - started < TIMEOUT:
            time.sleep(0.1)
            pending = Event.objects.filter(processed_at__isnull=True).count()
        elapsed = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge("ingest")
    if pending:
        sys.exit(f"{pending} events still unprocessed after {TIMEOUT:.0f} s")
    profiles = Profile.objects.filter(merged_into__isnull=True).count()
    merged = Profile.objects.filter(merged_into__isnull=False).count()
    print(
        f"processed {len(ids)} events into {profiles} profiles ({merged} merged away) "
        f"with {WORKERS} worker processes in {elapsed:.1f} s"
        + (f", {len(REALTIME_DEFINITIONS)} real-time segments active" if SEGMENTS else ""),
    )
    print(f"processing: {len(ids) / elapsed:,.0f} events/s   (target >= {TARGET:,} events/s)")


def main() -> None:
    database_recreate(DATABASE_URL)
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "cdp.settings",
        "LOG_LEVEL": "WARNING",
    }
    subprocess.run(
        [sys.executable, "-c", "from bench.process import _child; _child()"],
        cwd=ROOT,
        env=env,
        check=True,
    )


if __name__ == "__main__":
    main()
