"""Audit writes against ingestion: what the audit chain's serialisation costs ingestion.

Every audit row links to the one before it, so appends are serialised: a writer takes a
transaction-scoped advisory lock (access.models.AUDIT_CHAIN_LOCK) and holds it until its
transaction commits. Ingestion's processing appends rows too (consent signals, last in its
transaction). This bench measures ingestion with and without concurrent audited actions.

One run on its own database (`cdp_audit_bench`, dropped and migrated first) and its own
redis-server:
1. starts the web server as the web nodes run it (`python -m cdp.web`) and two Celery workers on
   the `ingest` and `default` queues; ingests a few people to read;
2. three phases of BENCH_AUDIT_EVENTS (20,000) fresh demo events each, in batches of 100 from 8
   keep-alive connections: without audited actions (baseline), with audited actions (API reads
   of a profile, each writing a "view" audit row, offered at BENCH_AUDIT_RATE/s from 8
   connections until the phase's events are processed), and without again (the database has
   grown: the two baselines bracket the run);
3. per phase: accepted events/s, end-to-end events/s (until every event is processed), the
   web server's and workers' CPU per 1,000 events (load-independent, but in the middle phase it
   includes the audited reads' own cost), audit rows written, audited reads answered and their
   latency, and how often a backend was seen waiting on the chain's lock (sampled every 20 ms).

Environment: BENCH_AUDIT_DATABASE_URL, BENCH_AUDIT_EVENTS (20000), BENCH_AUDIT_RATE (100),
BENCH_AUDIT_TIMEOUT (600 s to process a phase).
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench import PrivateRedis, celery_worker_command, database_prepare, free_port, server_wait
from bench.ingest import _process_tree_cpu_seconds, _start, _stop

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DATABASE_URL = os.environ.get(
    "BENCH_AUDIT_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_audit_bench"
)
EVENTS = int(os.environ.get("BENCH_AUDIT_EVENTS", "20000"))
AUDIT_RATE = float(os.environ.get("BENCH_AUDIT_RATE", "100"))
TIMEOUT = float(os.environ.get("BENCH_AUDIT_TIMEOUT", "600"))
BATCH_SIZE = 100
CONNECTIONS = 8
CELERY_WORKERS = 2
WRITE_KEY = "audit_bench_write_key_0123456789ab"
INGEST_AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
AUDIT_CHAIN_LOCK = 0x0A0D17C4A1  # access.models.AUDIT_CHAIN_LOCK (no Django set-up here)


def _batches(seed: int, events: int) -> list[bytes]:
    """Demo-shop messages of fresh people (the seed draws them), in bodies of 100."""
    from profiles.demo import demo_messages

    now = datetime.now(UTC)
    messages = list(
        itertools.islice(demo_messages(profiles=events // 20 + 10, seed=seed, now=now), events)
    )
    for message in messages:
        message["messageId"] = str(uuid.uuid4())
    sent_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return [
        json.dumps({"batch": messages[i : i + BATCH_SIZE], "sentAt": sent_at}).encode()
        for i in range(0, len(messages), BATCH_SIZE)
    ]


def _send(port: int, bodies: list[bytes]) -> tuple[float, dict[int, int]]:
    """Post every body once over CONNECTIONS keep-alive connections; seconds and statuses."""
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def connection(first: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in bodies[first::CONNECTIONS]:
            try:
                conn.request(
                    "POST",
                    "/v1/batch",
                    body=body,
                    headers={"Content-Type": "application/json", "Authorization": INGEST_AUTH},
                )
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = 0
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=connection, args=(n,)) for n in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, statuses


class AuditedReads:
    """API reads of profiles (each audited) offered at `rate` per second, open loop, until
    stopped; their latency counts from when each was due."""

    def __init__(self, port: int, api_key: str, profile_ids: list[int], rate: float) -> None:
        self.port, self.rate = port, rate
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.paths = [f"/api/v1/profiles/{pk}/" for pk in profile_ids]
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._connection, args=(n,)) for n in range(CONNECTIONS)
        ]

    def start(self) -> None:
        self.start_at = time.perf_counter() + 0.2
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _connection(self, first: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        for index in itertools.count(first, CONNECTIONS):
            due = self.start_at + index / self.rate
            while not self.stop.is_set() and due > time.perf_counter():
                time.sleep(min(0.05, due - time.perf_counter()))
            if self.stop.is_set():
                break
            try:
                conn.request("GET", self.paths[index % len(self.paths)], headers=self.headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                status = 0
            with self.lock:
                self.latencies.append(time.perf_counter() - due)
                self.statuses[status] = self.statuses.get(status, 0) + 1
        conn.close()


class LockWaits:
    """Samples pg_locks every 20 ms: how many backends wait on the audit chain's lock."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        import psycopg2

        conn = psycopg2.connect(DATABASE_URL)
        conn.autocommit = True
        # pg_advisory_xact_lock(bigint) shows its key as classid (high 32 bits), objid (low).
        high, low = AUDIT_CHAIN_LOCK >> 32, AUDIT_CHAIN_LOCK & 0xFFFFFFFF
        with conn.cursor() as cursor:
            while not self.stop.wait(0.02):
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND classid = %s AND objid = %s",
                    [high, low],
                )
                self.samples.append(cursor.fetchone()[0])
        conn.close()

    def __enter__(self) -> LockWaits:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _query(sql: str) -> int:
    import psycopg2

    with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return int(cursor.fetchone()[0])


def _wait_processed() -> bool:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if not _query(
            "SELECT count(*) FROM profiles_event WHERE processed_at IS NULL OR profile_id IS NULL"
        ):
            return True
        time.sleep(0.2)
    return False


@dataclass
class Phase:
    name: str
    accepted_rate: float
    end_to_end_rate: float | None
    cpu_ms_per_1000: float
    audit_rows: int
    non_200: dict[int, int]
    lock_wait_share: float  # share of samples with a backend waiting on the chain's lock
    reads: AuditedReads | None = None
    reads_seconds: float = 0.0


def _phase(
    name: str, port: int, bodies: list[bytes], pids: list[int], reads: AuditedReads | None
) -> Phase:
    audit_before = _query("SELECT count(*) FROM consent_auditlog")
    cpu_before = sum(_process_tree_cpu_seconds(pid) for pid in pids)
    with LockWaits() as waits:
        started = time.perf_counter()
        if reads is not None:
            reads.start()
        seconds, statuses = _send(port, bodies)
        processed = _wait_processed()
        end_to_end = time.perf_counter() - started
        if reads is not None:
            reads.finish()
    cpu = sum(_process_tree_cpu_seconds(pid) for pid in pids) - cpu_before
    events = statuses.get(200, 0) * BATCH_SIZE
    return Phase(
        name=name,
        accepted_rate=events / seconds,
        end_to_end_rate=events / end_to_end if processed else None,
        cpu_ms_per_1000=cpu / max(events, 1) * 1e6,
        audit_rows=_query("SELECT count(*) FROM consent_auditlog") - audit_before,
        non_200={s: c for s, c in statuses.items() if s != 200},
        lock_wait_share=(
            sum(1 for s in waits.samples if s) / len(waits.samples) if waits.samples else 0.0
        ),
        reads=reads,
        reads_seconds=end_to_end,
    )


def _percentile_ms(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def _print(phase: Phase, baseline: Phase) -> None:
    end_to_end = f"{phase.end_to_end_rate:,.0f} ev/s" if phase.end_to_end_rate else "not finished"
    ratio = (
        f" ({phase.end_to_end_rate / baseline.end_to_end_rate:.2f} x baseline)"
        if phase.end_to_end_rate and baseline.end_to_end_rate and phase is not baseline
        else ""
    )
    print(f"  {phase.name}:")
    print(f"    accepted (batches of 100)            {phase.accepted_rate:>10,.0f} ev/s")
    print(f"    end to end (processed)               {end_to_end:>15}{ratio}")
    print(f"    web + worker CPU per 1,000 events    {phase.cpu_ms_per_1000:>10,.0f} ms")
    print(f"    audit rows written                   {phase.audit_rows:>10,}")
    print(f"    chain lock waited on (samples)       {phase.lock_wait_share:>10.1%}")
    if phase.reads is not None:
        answered = phase.reads.statuses.get(200, 0)
        print(
            f"    audited reads answered               {answered / phase.reads_seconds:>10,.0f}/s"
            f"   offered {AUDIT_RATE:,.0f}/s; latency p50 / p99 "
            f"{_percentile_ms(phase.reads.latencies, 50):.0f} / "
            f"{_percentile_ms(phase.reads.latencies, 99):.0f} ms"
        )
        failed = {s: c for s, c in phase.reads.statuses.items() if s != 200}
        if failed:
            print(f"    audited reads not answered 200: {failed}")
    if phase.non_200:
        print(f"    ingestion answers other than 200: {phase.non_200}")


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    import django

    django.setup()
    logs = ROOT / "bench" / "results"
    logs.mkdir(exist_ok=True)
    redis = PrivateRedis()
    redis.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=redis.url,
        DEBUG="false",
        SECRET_KEY="bench-" + "k" * 20 + uuid.uuid4().hex,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="600",
        DJANGO_SETTINGS_MODULE="cdp.settings",
        AUDIT_ANCHOR_PATH=str(logs / "audit-bench-anchors"),
    )
    load_before = os.getloadavg()
    print(
        f"audit: {EVENTS:,} events per phase; audited reads offered at {AUDIT_RATE:,.0f}/s in "
        f"the middle phase; web server and {CELERY_WORKERS} Celery worker processes; load "
        f"average before {load_before[0]:.2f} on {os.cpu_count()} cores",
        flush=True,
    )
    database_prepare(DATABASE_URL, env, source="Audit bench", write_key=WRITE_KEY)
    api_key = (
        subprocess.run(
            [PYTHON, "manage.py", "create_api_key", "audit bench", "--scopes", "profiles:read"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    phases_bodies = [_batches(seed, EVENTS) for seed in (11, 12, 13)]
    processes: list[subprocess.Popen] = []
    try:
        web = _start(
            [PYTHON, "-m", "cdp.web"],
            {**env, "WEB_BIND": f"127.0.0.1:{port}"},
            logs / "audit-web.log",
        )
        processes.append(web)
        worker = _start(
            celery_worker_command(queues="ingest,default", concurrency=CELERY_WORKERS),
            env,
            logs / "audit-celery.log",
        )
        processes.append(worker)
        server_wait(port, web)
        _send(port, _batches(10, 2000))  # people to read, and a warm server
        if not _wait_processed():
            print("  the warm-up events were not processed in time")
            return 1
        profile_ids = [
            int(pk)
            for pk in (_query_all("SELECT id FROM profiles_profile ORDER BY id LIMIT 200") or [0])
        ]
        pids = [web.pid, worker.pid]
        baseline = _phase("without audited actions", port, phases_bodies[0], pids, None)
        reads = AuditedReads(port, api_key, profile_ids, AUDIT_RATE)
        audited = _phase(
            f"with audited reads offered at {AUDIT_RATE:,.0f}/s",
            port,
            phases_bodies[1],
            pids,
            reads,
        )
        again = _phase("without audited actions, again", port, phases_bodies[2], pids, None)
    finally:
        _stop(processes)
        redis.kill()
    print("audit results:")
    for phase in (baseline, audited, again):
        _print(phase, baseline)
    load_after = os.getloadavg()
    print(f"  load average before / after: {load_before[0]:.2f} / {load_after[0]:.2f}")
    return 0


def _query_all(sql: str) -> list:
    import psycopg2

    with psycopg2.connect(DATABASE_URL) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall()]


if __name__ == "__main__":
    sys.exit(main())
