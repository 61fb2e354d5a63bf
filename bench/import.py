"""Bulk import benchmark: 1M historical events from a CSV file through `import_events`' service.

What it does, on a dedicated database (`cdp_bench_import`, dropped and migrated first):
1. writes BENCH_IMPORT_EVENTS synthetic shop events (a seeded mix of Product Viewed, Product
   Added and Order Completed by 50,000 people over a year, with price/sku/quantity properties)
   to a CSV file (not timed);
2. baseline, the API batch path: the first BENCH_IMPORT_BASELINE of those events, as messages,
   through `ingest_messages` 100 at a time (what one `/v1/batch` request of 100 costs the
   server, without HTTP), into a source of its own: events/s;
3. imports the whole file with `data_import_run` (read, turned into messages, validated,
   deduplicated, filtered, stored with COPY, queued for processing), as the command and the
   worker do: events/s, against the issue's target.
Events are queued for processing on BENCH_REDIS_URL and nothing processes them (that is the
processing bench's figure); the queue is emptied afterwards.

Environment: BENCH_IMPORT_DATABASE_URL (postgres://postgres@127.0.0.1:5432/cdp_bench_import),
BENCH_REDIS_URL (redis://127.0.0.1:6379/2), BENCH_IMPORT_EVENTS (1000000),
BENCH_IMPORT_BASELINE (100000).
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench import database_recreate

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_IMPORT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench_import"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
EVENTS = int(os.environ.get("BENCH_IMPORT_EVENTS", "1000000"))
BASELINE = int(os.environ.get("BENCH_IMPORT_BASELINE", "100000"))
PEOPLE = 50_000
TARGET = 10_000
COLUMNS = [
    "event",
    "userId",
    "timestamp",
    "messageId",
    "properties.sku",
    "properties.price",
    "properties.quantity",
]


def _events_write(path: Path) -> None:
    rng = random.Random(17)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    names = ["Product Viewed"] * 6 + ["Product Added"] * 3 + ["Order Completed"]
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for number in range(EVENTS):
            at = start + timedelta(seconds=rng.randrange(365 * 86400))
            writer.writerow(
                [
                    rng.choice(names),
                    f"user-{rng.randrange(PEOPLE)}",
                    at.isoformat().replace("+00:00", "Z"),
                    f"import-{number}",
                    f"SKU-{rng.randrange(2000)}",
                    f"{rng.randrange(100, 20000) / 100:.2f}",
                    str(rng.randrange(1, 4)),
                ]
            )


def _child(csv_path: str) -> None:
    import django

    django.setup()
    from django.core.files import File
    from django.core.management import call_command

    from access.row_files import rows_read
    from access.services import source_create
    from cdp.celery import app as celery_app
    from profiles.ingestion import ingest_messages
    from profiles.services import data_import_create, data_import_run
    from profiles.services.imports import event_row_message

    call_command("migrate", verbosity=0)
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ingest")
    path = Path(csv_path)

    baseline_source = source_create(name="bench api batches").record
    with path.open("rb") as raw:
        messages = []
        for _, row in rows_read(raw, "csv"):
            messages.append(event_row_message(row, csv=True))  # type: ignore[arg-type]
            if len(messages) == BASELINE:
                break
    started, cpu = time.monotonic(), _cpu_seconds()
    stored = 0
    for begin in range(0, len(messages), 100):
        stored += ingest_messages(
            source=baseline_source, messages=messages[begin : begin + 100]
        ).accepted
    baseline_seconds = time.monotonic() - started
    baseline_cpu = [after - before for after, before in zip(_cpu_seconds(), cpu, strict=True)]
    del messages

    source = source_create(name="bench import").record
    with path.open("rb") as raw:
        job = data_import_create(
            source=source, kind="events", upload=File(raw, name=path.name), file_name=path.name
        )
    started, cpu = time.monotonic(), _cpu_seconds()
    job = data_import_run(job=job)
    seconds = time.monotonic() - started
    import_cpu = [after - before for after, before in zip(_cpu_seconds(), cpu, strict=True)]
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("ingest")
    if job.status != "done" or job.accepted_count != EVENTS:
        sys.exit(f"import: {job.status}, {job.accepted_count} of {EVENTS} stored: {job.message}")
    print(
        f"baseline, API batch path (ingest_messages, 100 a call): {stored:,} events in "
        f"{baseline_seconds:.1f} s = {stored / baseline_seconds:,.0f} events/s"
    )
    print(f"import_events, CSV file: {EVENTS:,} events in {seconds:.1f} s")
    print(f"import: {EVENTS / seconds:,.0f} events/s   (target >= {TARGET:,} events/s)")
    # CPU seconds depend less than events/s on what else the machine runs.
    for label, (python, postgres), count in (
        ("baseline, API batch path", baseline_cpu, stored),
        ("import_events", import_cpu, EVENTS),
    ):
        print(
            f"{label}: CPU per 100,000 events: {python * 1e5 / count:.1f} s in this process, "
            f"{postgres * 1e5 / count:.1f} s in its PostgreSQL backend"
        )


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by this process and by its PostgreSQL backend (read in /proc:
    0 when the server is not on this machine)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
        postgres = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        postgres = 0.0
    return time.process_time(), postgres


def main() -> None:
    database_recreate(DATABASE_URL)
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "cdp.settings",
        "LOG_LEVEL": "WARNING",
    }
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        env["MEDIA_ROOT"] = str(Path(folder) / "media")  # where the import keeps its copy
        csv_path = Path(folder) / "events.csv"
        _events_write(csv_path)
        print(
            f"wrote {EVENTS:,} events to a {csv_path.stat().st_size / 1e6:.0f} MB CSV file "
            "(not timed)",
            flush=True,
        )
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import importlib,sys; importlib.import_module('bench.import')._child(sys.argv[1])",
                str(csv_path),
            ],
            cwd=ROOT,
            env=env,
            check=True,
        )


if __name__ == "__main__":
    main()
