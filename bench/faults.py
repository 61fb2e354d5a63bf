"""Fault benchmark: nothing accepted is lost while workers, the broker and the database fail.

One run on its own database (`cdp_faults_bench`, dropped and migrated first) and its own
redis-server (a private one on a free port, keeping nothing on disk: restarting it loses every
queued task, as a production Redis without persistence would):
1. starts the web server as the web nodes run it (`python -m cdp.web`), two Celery workers on the
   `ingest` and `default` queues and Celery beat (whose per-minute sweep recovers lost work);
2. baseline: 5% of the events, no fault, and the seconds until they are all processed;
3. sends BENCH_FAULTS_EVENTS (50,000) demo events in batches of 100 at BENCH_FAULTS_RATE events/s
   from 8 keep-alive connections, every messageId unique, about 2,000 people (each identified
   by userId, anonymousId and email, and tracked under the user id or the anonymous id alone).
   The client behaves as the SDKs do: a 5xx or a dropped connection is retried (Retry-After
   honoured), the same body with the same messageIds;
4. meanwhile: SIGKILLs the workers five times (restarted 3 s later), kills the Redis server and
   starts it again empty 10 s later, and terminates every database backend of the run three
   times (`pg_terminate_backend`);
5. for each fault, the minutes until every event received before it is processed; then
   acknowledged, stored, processed, duplicates, lost, profiles per person and every 5xx.

Goal (issue 16): 0 lost, 0 duplicated, 1 profile per person, every backlog drained without a
human. Environment: BENCH_FAULTS_DATABASE_URL, BENCH_FAULTS_EVENTS (50000), BENCH_FAULTS_PEOPLE
(2000), BENCH_FAULTS_RATE (1000 events/s), BENCH_FAULTS_TIMEOUT (900 s to drain).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import PrivateRedis, celery_worker_command, database_prepare, free_port, server_wait
from bench.ingest import _start, _stop

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(sys.executable).parent
DATABASE_URL = os.environ.get(
    "BENCH_FAULTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_faults_bench"
)
EVENTS = int(os.environ.get("BENCH_FAULTS_EVENTS", "50000"))
PEOPLE = int(os.environ.get("BENCH_FAULTS_PEOPLE", "2000"))
RATE = float(os.environ.get("BENCH_FAULTS_RATE", "1000"))
DRAIN_TIMEOUT = float(os.environ.get("BENCH_FAULTS_TIMEOUT", "900"))
BATCH_SIZE = 100
CONNECTIONS = 8
CELERY_WORKERS = 2
WRITE_KEY = "faults_write_key_0123456789abcdef"
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
BASELINE_SHARE = 0.05
# When, as a share of the sending time, each fault happens.
WORKER_KILLS = (0.1, 0.3, 0.5, 0.7, 0.9)
REDIS_RESTART = 0.4
DATABASE_KILLS = (0.2, 0.6, 0.8)
WORKER_DOWN_SECONDS = 3.0
REDIS_DOWN_SECONDS = 10.0


def _messages(people: int, count: int, prefix: str) -> list[dict]:
    """`count` messages about `people` people, in rounds: each person's first message is an
    identify linking their userId, anonymousId and email; later ones are tracks under the user
    id, pages under the anonymous id alone."""
    now = datetime.now(UTC).isoformat()
    messages = []
    for n in range(count):
        person, round_ = n % people, n // people
        ids = {"userId": f"user-{person}"} if round_ % 2 else {"anonymousId": f"anon-{person}"}
        if round_ == 0:
            ids = {"userId": f"user-{person}", "anonymousId": f"anon-{person}"}
            message = {"type": "identify", "traits": {"email": f"p{person}@example.com"}}
        elif round_ % 2:
            message = {"type": "track", "event": "Product Viewed", "properties": {"n": n}}
        else:
            message = {"type": "page", "name": "Home", "properties": {"path": "/"}}
        messages.append({**message, **ids, "messageId": f"{prefix}-{n}", "timestamp": now})
    return messages


def _bodies(messages: list[dict]) -> list[tuple[list[str], bytes]]:
    sent_at = datetime.now(UTC).isoformat()
    return [
        (
            [m["messageId"] for m in messages[start : start + BATCH_SIZE]],
            json.dumps({"batch": messages[start : start + BATCH_SIZE], "sentAt": sent_at}).encode(),
        )
        for start in range(0, len(messages), BATCH_SIZE)
    ]


@dataclass
class Sent:
    acknowledged: list[str] = field(default_factory=list)  # messageIds answered 200
    statuses: dict[int, int] = field(default_factory=dict)  # every answer, retries included
    refused_batches: int = 0  # given up after every retry


def _send(port: int, bodies: list[tuple[list[str], bytes]], rate: float) -> Sent:
    """Post every body once at `rate` events/s, retried as an SDK retries until answered 200."""
    work: queue.Queue = queue.Queue()
    for index, body in enumerate(bodies):
        work.put((index, body))
    sent = Sent()
    lock = threading.Lock()
    start = time.monotonic()

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            try:
                index, (ids, body) = work.get_nowait()
            except queue.Empty:
                break
            due = start + index * BATCH_SIZE / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            for _ in range(30):
                try:
                    conn.request(
                        "POST",
                        "/v1/batch",
                        body=body,
                        headers={"Content-Type": "application/json", "Authorization": AUTH},
                    )
                    response = conn.getresponse()
                    response.read()
                    status, wait = response.status, response.getheader("Retry-After")
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    status, wait = 0, None
                with lock:
                    sent.statuses[status] = sent.statuses.get(status, 0) + 1
                if status == 200:
                    with lock:
                        sent.acknowledged.extend(ids)
                    break
                if 400 <= status < 500:
                    break  # the SDKs do not retry a refusal
                time.sleep(min(float(wait or 1), 5))
            else:
                with lock:
                    sent.refused_batches += 1
        conn.close()

    threads = [threading.Thread(target=run) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


# The bench's own connections: spared when the run's backends are killed.
APPLICATION_NAME = "bench-faults"


def _query(sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(DATABASE_URL, application_name=APPLICATION_NAME)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        conn.close()


def _database_now() -> datetime:
    return _query("SELECT now()")[0][0]


def _oldest_pending() -> datetime | None:
    return _query("SELECT min(received_at) FROM profiles_event WHERE processed_at IS NULL")[0][0]


def _drained(before: datetime) -> bool:
    """Whether every event received before `before` is processed."""
    oldest = _oldest_pending()
    return oldest is None or oldest > before


def _backends_terminated() -> int:
    return len(
        _query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name <> %s",
            (APPLICATION_NAME,),
        )
    )


@dataclass
class Fault:
    name: str
    at: datetime  # the database's clock
    drained_seconds: float | None = None


class Stack:
    """The web server, the Celery workers and beat of the run."""

    def __init__(self, env: dict[str, str], logs: Path, port: int) -> None:
        self.env, self.logs, self.port = env, logs, port
        self.web = _start(
            [PYTHON, "-m", "cdp.web"],
            {**env, "WEB_BIND": f"127.0.0.1:{port}"},
            logs / "faults-web.log",
        )
        self.beat = _start(
            [str(BIN / "celery"), "-A", "cdp", "beat", "-l", "warning"],
            env,
            logs / "faults-beat.log",
        )
        self.worker = self._worker()

    def _worker(self) -> subprocess.Popen:
        return _start(
            celery_worker_command(queues="ingest,default", concurrency=CELERY_WORKERS),
            self.env,
            self.logs / "faults-celery.log",
        )

    def worker_killed_and_restarted(self) -> None:
        os.killpg(self.worker.pid, signal.SIGKILL)  # the pool's children too
        self.worker.wait()
        time.sleep(WORKER_DOWN_SECONDS)
        self.worker = self._worker()

    def wait_until_serving(self) -> None:
        server_wait(self.port)

    def stop(self) -> None:
        _stop([self.web, self.worker, self.beat])


def _set_up(redis: PrivateRedis) -> dict[str, str]:
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
        WEB_CONCURRENCY=os.environ.get("BENCH_WEB_WORKERS", "2"),
    )
    database_prepare(DATABASE_URL, env, source="Faults", write_key=WRITE_KEY)
    return env


def _wait_drained(before: datetime, since: float) -> float | None:
    """Seconds from `since` (monotonic) until every event received before `before` is
    processed, or None after DRAIN_TIMEOUT."""
    while time.monotonic() - since < DRAIN_TIMEOUT:
        if _drained(before):
            return time.monotonic() - since
        time.sleep(1)
    return None


def _faults_inject(stack: Stack, redis: PrivateRedis, seconds: float, faults: list[Fault]) -> None:
    """The faults of step 4, at their share of the sending time, each timed until drained."""
    plan = sorted(
        [(share, "worker SIGKILL") for share in WORKER_KILLS]
        + [(REDIS_RESTART, "Redis restart (empty)")]
        + [(share, "database backends killed") for share in DATABASE_KILLS]
    )
    start = time.monotonic()
    for share, name in plan:
        time.sleep(max(0.0, start + share * seconds - time.monotonic()))
        fault = Fault(name, _database_now())
        faults.append(fault)
        began = time.monotonic()
        if name == "worker SIGKILL":
            stack.worker_killed_and_restarted()
        elif name.startswith("Redis"):
            redis.kill()
            time.sleep(REDIS_DOWN_SECONDS)
            redis.start()
        else:
            fault.name += f" ({_backends_terminated()})"
        threading.Thread(target=_time_drain, args=(fault, began), daemon=True).start()


def _time_drain(fault: Fault, began: float) -> None:
    fault.drained_seconds = _wait_drained(fault.at, began)


def _people_profiles() -> dict[int, int]:
    """person -> how many live profiles hold its identifiers or its events."""
    rows = _query("SELECT id, merged_into_id FROM profiles_profile")
    merged_into = dict(rows)

    def live(profile_id: int) -> int:
        seen = 0
        while merged_into.get(profile_id) is not None and seen < 100:
            profile_id, seen = merged_into[profile_id], seen + 1
        return profile_id

    owners: dict[int, set[int]] = {}
    for value, profile_id in _query(
        "SELECT value, profile_id FROM identity_identity WHERE kind IN "
        "('user_id', 'anonymous_id', 'email')"
    ):
        digits = "".join(ch for ch in value.split("@")[0] if ch.isdigit())
        if digits:
            owners.setdefault(int(digits), set()).add(live(profile_id))
    for user_id, anonymous_id, profile_id in _query(
        "SELECT DISTINCT user_id, anonymous_id, profile_id FROM profiles_event "
        "WHERE profile_id IS NOT NULL"
    ):
        person = int((user_id or anonymous_id).rsplit("-", 1)[1])
        owners.setdefault(person, set()).add(live(profile_id))
    return {person: len(profiles) for person, profiles in owners.items()}


def _row(label: str, value: str, target: str = "", ok: bool | None = None) -> None:
    verdict = "" if ok is None else ("  ok" if ok else "  MISSED")
    print(f"  {label:<46}{value:>16}   {target}{verdict}", flush=True)


def main() -> int:
    logs = ROOT / "bench" / "results"
    logs.mkdir(exist_ok=True)
    redis = PrivateRedis()
    redis.start()
    port = free_port()
    print(
        f"faults: {EVENTS:,} events about {PEOPLE:,} people at {RATE:,.0f} events/s; database "
        f"{DATABASE_URL.rsplit('/', 1)[1]}, private Redis on port {redis.port}, logs in "
        f"{logs.relative_to(ROOT)}/faults-*.log",
        flush=True,
    )
    env = _set_up(redis)
    stack = Stack(env, logs, port)
    faults: list[Fault] = []
    try:
        stack.wait_until_serving()
        baseline_events = int(EVENTS * BASELINE_SHARE)
        baseline_sent = _send(port, _bodies(_messages(PEOPLE, baseline_events, "base")), RATE)
        baseline_drain = _wait_drained(_database_now(), time.monotonic())

        messages = _messages(PEOPLE, EVENTS, "run")
        seconds = EVENTS / RATE
        injector = threading.Thread(
            target=_faults_inject, args=(stack, redis, seconds, faults), daemon=True
        )
        injector.start()
        sent = _send(port, _bodies(messages), RATE)
        injector.join()
        sending_ended = time.monotonic()
        drained_after_sending = _wait_drained(_database_now(), sending_ended)
        deadline = time.monotonic() + 120
        while any(f.drained_seconds is None for f in faults) and time.monotonic() < deadline:
            time.sleep(1)
        alive = {
            "web": stack.web.poll() is None,
            "worker": stack.worker.poll() is None,
            "beat": stack.beat.poll() is None,
        }
    finally:
        stack.stop()
        redis.kill()

    acknowledged = set(sent.acknowledged) | set(baseline_sent.acknowledged)
    stored_ids = {m for (m,) in _query("SELECT message_id FROM profiles_event")}
    stored, distinct = _query("SELECT count(*), count(DISTINCT message_id) FROM profiles_event")[0]
    processed = _query(
        "SELECT count(*) FROM profiles_event WHERE processed_at IS NOT NULL "
        "AND profile_id IS NOT NULL"
    )[0][0]
    lost = len(acknowledged - stored_ids)
    people = _people_profiles()
    split = sum(1 for n in people.values() if n != 1)
    server_errors = {s: n for s, n in sent.statuses.items() if s >= 500 or s == 0}

    print("faults results:")
    _row(
        "baseline: drained after sending (no fault)",
        f"{(baseline_drain or 0) / 60:.2f} min" if baseline_drain else "not drained",
        f"{baseline_events:,} events",
    )
    _row(
        "acknowledged (answered 200)", f"{len(acknowledged):,}", f"of {EVENTS + baseline_events:,}"
    )
    _row("stored", f"{stored:,}")
    _row("processed (processed_at and a profile)", f"{processed:,}", "", processed == stored)
    _row("lost (acknowledged, not stored)", f"{lost:,}", "target 0", lost == 0)
    _row(
        "duplicates (a messageId stored twice)",
        f"{stored - distinct:,}",
        "target 0",
        stored == distinct,
    )
    _row(
        "people with other than 1 profile",
        f"{split:,} of {len(people):,}",
        f"max {max(people.values(), default=0)} profiles; target 0",
        split == 0,
    )
    _row(
        "batches refused after every retry",
        f"{sent.refused_batches:,}",
        "target 0",
        not sent.refused_batches,
    )
    _row(
        "5xx / dropped answers (retried)",
        ", ".join(f"{s or 'dropped'}: {n}" for s, n in sorted(server_errors.items())) or "none",
    )
    for fault in faults:
        _row(
            f"  drained after {fault.name}",
            f"{fault.drained_seconds / 60:.2f} min" if fault.drained_seconds else "NOT DRAINED",
            "without a human",
            fault.drained_seconds is not None,
        )
    _row(
        "drained after sending ended",
        f"{drained_after_sending / 60:.2f} min" if drained_after_sending else "NOT DRAINED",
        "",
        drained_after_sending is not None,
    )
    if not all(alive.values()):
        print(f"  processes that died on their own: {[k for k, v in alive.items() if not v]}")
    ok = (
        lost == 0
        and stored == distinct
        and split == 0
        and processed == stored
        and drained_after_sending is not None
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
