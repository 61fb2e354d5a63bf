"""Ingestion benchmark: web server and Celery workers on PostgreSQL and Redis, loaded on loopback.

What it does, in one run on a dedicated database (`cdp_bench`, dropped and migrated first):
1. starts the web server as the web nodes run it (`python -m cdp.web`) and Celery worker(s) on the
   `ingest` and `default` queues;
2. posts demo-shop messages to `/v1/batch` in batches of 100 from several client processes with
   keep-alive connections: accepted events/s is events / time until the last 200 came back;
3. waits until every event has `processed_at` and a profile: end-to-end events/s is events /
   time from the first request to then;
4. copies the same stored rows with a bare `COPY` into a table shaped like the event table
   (same columns, indexes and unique constraint), for scale;
5. posts single events to `/v1/track` from 32 connections for a fixed time, as fast as they
   are answered: the requests/s the server sustains, and the latency at that saturation (with
   32 requests always in flight it is 32 / throughput on average, whatever the server's speed);
6. once those are processed, offers single events at a fixed rate (BENCH_SINGLE_RATE, the
   issue's 1,000/s) on 32 connections, open loop: the latency p50/p99 a sender sees at that
   rate, counted from each request's scheduled time (a client-side asyncio loop; see
   _paced_singles).
Batches are sent by a pure Python client (http.client, processes x threads: each body exactly
once; its cost is small next to the server's per 100 events). Single events are sent by `wrk`
(C, event loop, the Lua script below) when it is installed (`make bench` installs it with apt
when it can), else by the same Python client, which then needs about as much CPU per request as
the server and shares the 2 cores with it: the output says which one ran.
BENCH_LOAD_GENERATOR=wrk|python forces one for the singles.

Environment: BENCH_DATABASE_URL (postgres://postgres@127.0.0.1:5432/cdp_bench), BENCH_REDIS_URL
(redis://127.0.0.1:6379/2; its Celery queues are emptied), BENCH_EVENTS (50000),
BENCH_SINGLE_SECONDS (15), BENCH_WEB_WORKERS and BENCH_WEB_THREADS (cdp/web.py's),
BENCH_CELERY_WORKERS (2), BENCH_BATCH_CONNECTIONS (8), BENCH_PORT (8765), BENCH_PROCESS_TIMEOUT
(300 s), BENCH_LOAD_GENERATOR (auto), BENCH_SINGLE_RATE (1000).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import http.client
import io
import itertools
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from bench import celery_worker_command, database_prepare, server_wait
from cdp.web import web_settings

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
BATCH_SIZE = 100
SINGLE_SECONDS = float(os.environ.get("BENCH_SINGLE_SECONDS", "15"))
SINGLE_CONNECTIONS = 32
# The rate the single-event latency target is measured at (the target rate of the issue).
SINGLE_RATE = float(os.environ.get("BENCH_SINGLE_RATE", "1000"))
# The production web-node settings (cdp/web.py) unless overridden here.
_WEB = web_settings()
WEB_WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", str(_WEB["workers"])))
WEB_THREADS = int(os.environ.get("BENCH_WEB_THREADS", str(_WEB["blocking_threads"])))
CELERY_WORKERS = int(os.environ.get("BENCH_CELERY_WORKERS", "2"))
BATCH_CONNECTIONS = int(os.environ.get("BENCH_BATCH_CONNECTIONS", "8"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
PROCESS_TIMEOUT = float(os.environ.get("BENCH_PROCESS_TIMEOUT", "300"))
CLIENT_PROCESSES = 4
LOAD_GENERATOR = os.environ.get("BENCH_LOAD_GENERATOR", "auto")
WRITE_KEY = "bench_write_key_0123456789abcdef"
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()

TARGET_ACCEPTED = 10_000
TARGET_END_TO_END = 3_000
TARGET_SINGLE_RPS = 1_000
TARGET_SINGLE_P99_MS = 50

# Filled before the client processes fork, so they inherit it instead of receiving pickles.
_BODIES: list[bytes] = []
_SINGLE_TEMPLATES: list[dict] = []
SENT = [0]


# -- set-up ------------------------------------------------------------------------------------
def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
    env.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DEBUG="false",
        SECRET_KEY="bench-" + "k" * 20 + uuid.uuid4().hex,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE="600",
        DJANGO_SETTINGS_MODULE="cdp.settings",
    )
    return env


def _reset_database(env: dict[str, str]) -> None:
    database_prepare(DATABASE_URL, env, source="Bench", write_key=WRITE_KEY)
    import redis

    # Only this database's Celery queues: other work on the same Redis is left alone.
    redis.Redis.from_url(REDIS_URL).delete(
        "ingest", "default", "ml", "unacked", "unacked_index", "unacked_mutex"
    )


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    # Own session, so stopping it takes its children (web and Celery worker processes) along.
    return subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_until_serving(web: subprocess.Popen, timeout: float = 60) -> None:
    server_wait(PORT, web, timeout)


def _build_payloads() -> None:
    """Demo-shop messages (realistic sizes and shapes), cut into batch bodies of 100."""
    from profiles.demo import demo_messages

    now = datetime.now(UTC)
    people = EVENTS // 20 + 10
    messages = list(itertools.islice(demo_messages(profiles=people, seed=2024, now=now), EVENTS))
    sent_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    _BODIES.clear()
    for start in range(0, len(messages), BATCH_SIZE):
        chunk = messages[start : start + BATCH_SIZE]
        _BODIES.append(json.dumps({"batch": chunk, "sentAt": sent_at}).encode())
    SENT[0] = len(messages)
    _SINGLE_TEMPLATES[:] = [m for m in messages if m["type"] == "track"][:2000]


# -- load generator ----------------------------------------------------------------------------
def _post(conn: http.client.HTTPConnection, path: str, body: bytes) -> int:
    conn.request(
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/json", "Authorization": AUTH},
    )
    response = conn.getresponse()
    response.read()
    return response.status


def _client_process(kind: str, worker: int, threads: int, start_at: float, out) -> None:
    """One client process: `threads` keep-alive connections; reports statuses and latencies."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = start_at + SINGLE_SECONDS

    def run(thread: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        mine: list[float] = []
        seen: dict[int, int] = {}
        slot = worker * threads + thread
        stride = CLIENT_PROCESSES * threads
        while time.time() < start_at:
            time.sleep(0.001)
        if kind == "batch":
            work = (("/v1/batch", body) for body in _BODIES[slot::stride])
        else:
            work = _single_bodies(slot, deadline)
        for path, body in work:
            began = time.perf_counter()
            try:
                status = _post(conn, path, body)
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            mine.append(time.perf_counter() - began)
            seen[status] = seen.get(status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)
            for status, count in seen.items():
                statuses[status] = statuses.get(status, 0) + count

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put((statuses, latencies))


def _single_body(n: int) -> bytes:
    """The n-th single event: a demo-shop track message with a fresh messageId."""
    message = dict(_SINGLE_TEMPLATES[n % len(_SINGLE_TEMPLATES)])
    message["messageId"] = str(uuid.uuid4())
    return json.dumps(message).encode()


def _single_bodies(slot: int, deadline: float):
    for n in itertools.count(slot):
        if time.time() >= deadline:
            return
        yield "/v1/track", _single_body(n)


@dataclass
class LoadResult:
    started: float  # epoch seconds of the first request
    seconds: float
    statuses: dict[int, int]
    p50: float  # seconds
    p99: float


def _use_wrk() -> bool:
    if LOAD_GENERATOR == "python":
        return False
    if LOAD_GENERATOR == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("BENCH_LOAD_GENERATOR=wrk but wrk is not installed")
    return shutil.which("wrk") is not None


def _load_python(kind: str, connections: int) -> LoadResult:
    """Run the Python client processes."""
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    threads = max(1, connections // CLIENT_PROCESSES)
    start_at = time.time() + 1.0
    processes = [
        context.Process(target=_client_process, args=(kind, w, threads, start_at, out))
        for w in range(CLIENT_PROCESSES)
    ]
    for process in processes:
        process.start()
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    for _ in processes:
        got_statuses, got_latencies = out.get(timeout=SINGLE_SECONDS + PROCESS_TIMEOUT)
        for status, count in got_statuses.items():
            statuses[status] = statuses.get(status, 0) + count
        latencies.extend(got_latencies)
    elapsed = time.time() - start_at
    for process in processes:
        process.join(timeout=10)
    return LoadResult(
        start_at, elapsed, statuses, _percentile(latencies, 50), _percentile(latencies, 99)
    )


class _PacedConnection(asyncio.Protocol):
    """One keep-alive connection of the fixed-rate client: one request in flight at a time;
    an answer is complete once its headers and Content-Length bytes have arrived (ingestion
    answers carry it: tests/cdp/test_web_server.py)."""

    def __init__(self, client: _PacedClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.due = 0.0
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, due: float) -> None:
        self.due, self.busy = due, True
        self.transport.write(request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:  # its request counts as failed (status 0); the connection is not reused
            self.client.record(self, 0)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buffer[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at)]) if at >= 0 else 0
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[end + 4 + length :]
        self.busy = False
        self.client.record(self, status)
        self.client.reuse(self)


class _PacedClient:
    """Requests due at start + i / rate; each goes out on the first free connection, or waits
    for one. All callbacks, no task per request: ~80 us of client CPU per request, where the
    stream-based client spent ~180 us of the 2 cores the server runs on."""

    def __init__(self, requests: list[bytes], rate: float, port: int = PORT) -> None:
        self.requests = requests
        self.rate = rate
        self.port = port
        self.free: list[_PacedConnection] = []
        self.waiting: collections.deque[tuple[bytes, float]] = collections.deque()
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()

    def record(self, connection: _PacedConnection, status: int) -> None:
        self.latencies.append(self.loop.time() - connection.due)
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if len(self.latencies) == len(self.requests) and not self.done.done():
            self.done.set_result(None)

    def reuse(self, connection: _PacedConnection) -> None:
        if self.waiting:
            connection.send(*self.waiting.popleft())
        else:
            self.free.append(connection)

    async def run(self, connections: int) -> float:
        for _ in range(connections):
            _, connection = await self.loop.create_connection(
                lambda: _PacedConnection(self), "127.0.0.1", self.port
            )
            self.free.append(connection)
        start = self.loop.time() + 0.5
        for index, request in enumerate(self.requests):
            due = start + index / self.rate
            if due > self.loop.time():
                await asyncio.sleep(due - self.loop.time())
            if self.free:
                self.free.pop().send(request, due)
            else:
                self.waiting.append((request, due))
        # Bounded: requests left waiting when every connection was lost are never answered.
        await asyncio.wait_for(self.done, len(self.requests) / self.rate + PROCESS_TIMEOUT)
        for connection in self.free:
            connection.transport.close()  # type: ignore[union-attr]
        return self.loop.time() - start


async def _paced_singles(rate: float, seconds: float, connections: int) -> LoadResult:
    """Single events offered at a fixed `rate` on `connections` keep-alive connections, open
    loop (raw HTTP/1.1, requests built beforehand). Request i is due at start + i / rate; its
    latency counts from when it was due, so a stall of the server is charged to every request
    that should have been sent during it (no coordinated omission: a client that waits would
    hide those)."""
    head = (
        "POST /v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: {AUTH}\r\nContent-Length: "
    ).encode()
    bodies = (_single_body(index) for index in range(int(rate * seconds)))
    requests = [head + str(len(body)).encode() + b"\r\n\r\n" + body for body in bodies]
    client = _PacedClient(requests, rate)
    started_at = time.time() + 0.5
    elapsed = await client.run(connections)
    return LoadResult(
        started_at,
        elapsed,
        client.statuses,
        _percentile(client.latencies, 50),
        _percentile(client.latencies, 99),
    )


# wrk script for single events: a fresh messageId in every request; prints the status counts
# of all threads and the latency percentiles on one line.
_WRK_SINGLE = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
  thread:set("ok", 0)
  thread:set("other", 0)
end
local templates, counter, prefix = {}, 0, ""
function init(args)
  prefix = string.format("%s-%d-", args[2], id)
  for line in io.lines(args[1]) do
    local at = string.find(line, "@MESSAGE_ID@", 1, true)
    table.insert(templates, {string.sub(line, 1, at - 1), string.sub(line, at + 12)})
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = args[3]
end
function request()
  counter = counter + 1
  local t = templates[counter % #templates + 1]
  return wrk.format(nil, "/v1/track", nil, t[1] .. prefix .. counter .. t[2])
end
function response(status, headers, body)
  if status == 200 then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local good, bad = 0, 0
  for _, thread in ipairs(threads) do
    good = good + thread:get("ok")
    bad = bad + thread:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT ok=%d other=%d socket_errors=%d seconds=%.6f p50_us=%d p99_us=%d\\n",
    good, bad, e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _load_wrk_single(logs: Path) -> LoadResult:
    """Single events from wrk: SINGLE_CONNECTIONS connections on 2 threads for SINGLE_SECONDS."""
    script = logs / "wrk_single.lua"
    script.write_text(_WRK_SINGLE)
    templates = logs / "wrk_single_templates.txt"
    lines = [json.dumps(dict(t, messageId="@MESSAGE_ID@")) for t in _SINGLE_TEMPLATES]
    templates.write_text("\n".join(lines) + "\n")
    command = [
        "wrk",
        "--threads=2",
        f"--connections={SINGLE_CONNECTIONS}",
        f"--duration={SINGLE_SECONDS:.0f}s",
        "--timeout=30s",
        f"--script={script}",
        f"http://127.0.0.1:{PORT}",
        "--",
        str(templates),
        uuid.uuid4().hex[:12],  # messageId prefix: unique to this run
        AUTH,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    finished = time.time()
    found = re.search(r"^RESULT (.*)$", output, re.MULTILINE)
    if not found:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    values = dict(item.split("=") for item in found.group(1).split())
    statuses = {200: int(values["ok"])}
    if int(values["other"]):
        statuses[-1] = int(values["other"])  # the script counts every non-200 answer together
    if int(values["socket_errors"]):
        statuses[0] = int(values["socket_errors"])
    seconds = float(values["seconds"])
    return LoadResult(
        finished - seconds,
        seconds,
        statuses,
        int(values["p50_us"]) / 1e6,
        int(values["p99_us"]) / 1e6,
    )


# -- measurements -------------------------------------------------------------------------------
def _connect():
    import psycopg2

    return psycopg2.connect(DATABASE_URL)


def _event_count() -> int:
    with _connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM profiles_event")
        return cur.fetchone()[0]


def _wait_processed(started: float) -> tuple[float | None, int, int]:
    """Seconds from `started` until every event has processed_at and a profile (or None)."""
    conn = _connect()
    conn.autocommit = True
    deadline = time.time() + PROCESS_TIMEOUT
    with conn.cursor() as cur:
        while True:
            cur.execute(
                "SELECT count(*) FILTER (WHERE processed_at IS NULL OR profile_id IS NULL), "
                "count(*) FROM profiles_event"
            )
            pending, total = cur.fetchone()
            if pending == 0:
                conn.close()
                return time.time() - started, pending, total
            if time.time() > deadline:
                conn.close()
                return None, pending, total
            time.sleep(0.2)


def _copy_baseline() -> tuple[int, float]:
    """Bare COPY of the stored event rows into a table with the event table's shape."""
    conn = _connect()
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_copy")
        cur.execute("CREATE TABLE bench_copy (LIKE profiles_event INCLUDING ALL)")
        conn.commit()
        rows = io.BytesIO()
        cur.copy_expert("COPY (SELECT * FROM profiles_event ORDER BY id) TO STDOUT", rows)
        count = rows.getvalue().count(b"\n")
        rows.seek(0)
        began = time.perf_counter()
        cur.copy_expert("COPY bench_copy FROM STDIN", rows)
        conn.commit()
        elapsed = time.perf_counter() - began
        cur.execute("DROP TABLE bench_copy")
        conn.commit()
    conn.close()
    return count, elapsed


def _cores_busy(seconds: float) -> float:
    """How many cores' worth of CPU the machine used over the next `seconds` (Linux /proc/stat;
    0.0 elsewhere)."""

    def sample() -> tuple[int, int]:
        try:
            ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        except OSError:
            return 0, 0
        idle = ticks[3] + ticks[4]  # idle and iowait
        return sum(ticks) - idle, sum(ticks)

    busy_before, total_before = sample()
    time.sleep(seconds)
    busy, total = sample()
    if total == total_before:
        return 0.0
    return (busy - busy_before) / (total - total_before) * (os.cpu_count() or 1)


def _process_tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its descendants (Linux /proc; 0.0 elsewhere): a
    steadier figure than latency on a machine whose speed drifts."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # gone meanwhile, or no /proc
    return total


def _percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _row(label: str, value: str, target: str, ok: bool | None) -> None:
    verdict = "" if ok is None else ("  ok" if ok else "  BELOW TARGET")
    print(f"  {label:<44}{value:>18}   {target}{verdict}", flush=True)


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    import django

    django.setup()
    env = _server_env()
    logs = ROOT / "bench" / "results"
    logs.mkdir(exist_ok=True)
    print(
        f"ingest: {EVENTS} events; web server {WEB_WORKERS} processes x {WEB_THREADS} threads, "
        f"{CELERY_WORKERS} Celery worker processes; database {urlsplit(DATABASE_URL).path[1:]}, "
        f"logs in {logs.relative_to(ROOT)}/",
        flush=True,
    )
    # Batches: the Python client's cost is small next to the server's 100 events per request,
    # and it sends every body exactly once. Singles: there it would cost about as much CPU as
    # the server's own work per request, so wrk is used when installed.
    single_generator = (
        "wrk, 2 threads"
        if _use_wrk()
        else f"Python http.client, {CLIENT_PROCESSES} processes (install wrk for a lighter one)"
    )
    print(
        f"load generators: batches Python http.client, {CLIENT_PROCESSES} processes x "
        f"{max(1, BATCH_CONNECTIONS // CLIENT_PROCESSES)} connections; singles {single_generator}",
        flush=True,
    )
    busy_before = _cores_busy(1.0)
    _reset_database(env)
    _build_payloads()
    processes: list[subprocess.Popen] = []
    try:
        web = _start(
            [PYTHON, "-m", "cdp.web"],
            {
                **env,
                "WEB_BIND": f"127.0.0.1:{PORT}",
                "WEB_CONCURRENCY": str(WEB_WORKERS),
                "WEB_THREADS": str(WEB_THREADS),
            },
            logs / "web.log",
        )
        processes.append(web)
        processes.append(
            _start(
                celery_worker_command(queues="ingest,default", concurrency=CELERY_WORKERS),
                env,
                logs / "celery.log",
            )
        )
        _wait_until_serving(web)

        batches = _load_python("batch", BATCH_CONNECTIONS)
        stored = _event_count()
        processed_seconds, pending, total = _wait_processed(batches.started)
        copied, copy_seconds = _copy_baseline()
        if _use_wrk():
            singles = _load_wrk_single(logs)
        else:
            singles = _load_python("single", SINGLE_CONNECTIONS)
        # The fixed-rate run starts once the events of the run before are all processed: it
        # measures the steady state at that rate, not the draining of a backlog.
        _wait_processed(time.time())
        web_cpu_before = _process_tree_cpu_seconds(web.pid)
        paced = asyncio.run(_paced_singles(SINGLE_RATE, SINGLE_SECONDS, SINGLE_CONNECTIONS))
        web_cpu = _process_tree_cpu_seconds(web.pid) - web_cpu_before
    finally:
        _stop(processes)

    accepted = batches.statuses.get(200, 0) * BATCH_SIZE
    accepted_rate = accepted / batches.seconds
    copy_rate = copied / copy_seconds if copied else 0.0
    single_rate = singles.statuses.get(200, 0) / singles.seconds
    p50, p99 = singles.p50 * 1000, singles.p99 * 1000
    batch_p50, batch_p99 = batches.p50 * 1000, batches.p99 * 1000

    cores = os.cpu_count() or 1
    print(
        f"ingest results ({cores} cores shared by server, workers, database and load generator; "
        f"{busy_before:.1f} busy with other work just before):"
    )
    _row(
        "accepted, batches of 100",
        f"{accepted_rate:,.0f} ev/s",
        f"target >= {TARGET_ACCEPTED:,} ev/s",
        accepted_rate >= TARGET_ACCEPTED,
    )
    _row("  batch request latency p50 / p99", f"{batch_p50:.0f} / {batch_p99:.0f} ms", "", None)
    _row("  events stored / sent", f"{stored:,} / {SENT[0]:,}", "", None)
    if processed_seconds is None:
        _row(
            "end to end (processed_at and a profile)",
            "not finished",
            f"{pending:,} of {total:,} pending after {PROCESS_TIMEOUT:.0f} s",
            False,
        )
        end_to_end = 0.0
    else:
        end_to_end = total / processed_seconds
        _row(
            "end to end (processed_at and a profile)",
            f"{end_to_end:,.0f} ev/s",
            f"target >= {TARGET_END_TO_END:,} ev/s",
            end_to_end >= TARGET_END_TO_END,
        )
    _row(
        f"single events, {SINGLE_CONNECTIONS} connections",
        f"{single_rate:,.0f} req/s",
        f"target >= {TARGET_SINGLE_RPS:,} req/s",
        single_rate >= TARGET_SINGLE_RPS,
    )
    _row("  latency p50 / p99 at that saturation", f"{p50:.1f} / {p99:.1f} ms", "", None)
    paced_rate = paced.statuses.get(200, 0) / paced.seconds
    _row(
        f"single events offered at {SINGLE_RATE:,.0f}/s, {SINGLE_CONNECTIONS} conns",
        f"{paced_rate:,.0f} req/s",
        "answered 200",
        None,
    )
    _row(
        "  latency p50 / p99 from the scheduled send",
        f"{paced.p50 * 1000:.1f} / {paced.p99 * 1000:.1f} ms",
        f"target p99 < {TARGET_SINGLE_P99_MS} ms",
        paced.p99 * 1000 < TARGET_SINGLE_P99_MS,
    )
    answered = sum(paced.statuses.values())
    if web_cpu and answered:
        _row(
            "  web server CPU per request at that rate",
            f"{web_cpu / answered * 1e6:,.0f} us",
            "",
            None,
        )
    _row(
        "bare COPY of the same rows (same table shape)",
        f"{copy_rate:,.0f} rows/s",
        f"{copied:,} rows",
        None,
    )
    if copy_rate:
        _row("accepted / COPY", f"{accepted_rate / copy_rate:.2f}", "", None)
    errors = {s: c for s, c in batches.statuses.items() if s != 200}
    single_errors = {
        s: c for s, c in [*singles.statuses.items(), *paced.statuses.items()] if s != 200
    }
    if errors or single_errors:
        print(f"  non-200 responses: batches {errors or 'none'}, singles {single_errors or 'none'}")
    # Measured just before the run: a load average after it is mostly this run's own work, and
    # one before still carries a run that has just ended.
    if busy_before > 0.25:
        print(
            f"  note: other work kept {busy_before:.1f} of the {cores} cores busy just before the "
            "run; every figure here may be depressed by it, the COPY baseline included: compare "
            "with the ratio."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
