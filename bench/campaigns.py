"""Campaigns benchmark: the delivery path's throughput to local receivers beside a bare client,
trigger-to-delivery latency through the whole deployment, and a broadcast to a large segment.

On a dedicated database (`cdp_bench_campaigns`, dropped and migrated first), with the
receivers in a process of their own (a Standard Webhooks HTTP receiver answering 204, and an
aiosmtpd SMTP sink; each arrival is timed there):
1. throughput, in one process with no broker: BENCH_CAMPAIGNS_SENDS queued deliveries per
   channel are sent by `deliveries_send` in SEND_BATCH batches (consent gate, caps,
   rendering, signing, recording: the whole path); then the same number of bare sends, a
   plain `httpx.Client` POST loop and an `smtplib` loop on one connection; rates and ratio;
2. latency, as deployed: the web server (`python -m cdp.web`) and BENCH_CAMPAIGNS_WORKERS
   Celery worker processes on Redis; BENCH_CAMPAIGNS_EVENTS "Product Added" events are POSTed
   to `/v1/track` at BENCH_CAMPAIGNS_RATE per second (paced, several connections) for people
   identified beforehand; two campaigns fire on them (a zero wait, then an email send; a zero
   wait, then a webhook send): p50/p99 from each request's 200 to the message's arrival at
   the SMTP sink and at the webhook receiver;
3. broadcast, on the same web server and workers: a broadcast campaign sends a webhook to
   each of BENCH_CAMPAIGNS_BROADCAST segment members (entered by `broadcast_batch` in its
   self-requeuing batches, each batch's deliveries sent by send tasks): time from queueing
   the first batch to the last arrival, and the workers' peak resident memory.

`python -m bench campaigns [--only throughput,latency,broadcast] [--broadcast N] [--profile DIR]`
(`--profile`: a cProfile of each channel's run in (1), written to DIR/<channel>.prof).
CPU-seconds per 1,000 sends are printed beside each rate in (1): the sending process's CPU
(every thread), less sensitive than the rate to what else the machine runs; and the load
average (1 minute) before and after each measurement, since the machine may be shared.

Environment: BENCH_CAMPAIGNS_DATABASE_URL (postgres://postgres@127.0.0.1:5432/cdp_bench_campaigns),
BENCH_CAMPAIGNS_REDIS_URL (redis://127.0.0.1:6379/7; its Celery queues are emptied),
BENCH_CAMPAIGNS_SENDS (2000), BENCH_CAMPAIGNS_EVENTS (2000), BENCH_CAMPAIGNS_RATE (200),
BENCH_CAMPAIGNS_WORKERS (2), BENCH_CAMPAIGNS_PORT (8766), BENCH_CAMPAIGNS_BROADCAST (100000).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench import celery_worker_command, database_recreate, free_port, server_wait
from bench.ingest import _start, _stop

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_CAMPAIGNS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench_campaigns"
)
REDIS_URL = os.environ.get("BENCH_CAMPAIGNS_REDIS_URL", "redis://127.0.0.1:6379/7")
SENDS = int(os.environ.get("BENCH_CAMPAIGNS_SENDS", "2000"))
EVENTS = int(os.environ.get("BENCH_CAMPAIGNS_EVENTS", "2000"))
RATE = float(os.environ.get("BENCH_CAMPAIGNS_RATE", "200"))
WORKERS = int(os.environ.get("BENCH_CAMPAIGNS_WORKERS", "2"))
PORT = int(os.environ.get("BENCH_CAMPAIGNS_PORT", "8766"))
BROADCAST = int(os.environ.get("BENCH_CAMPAIGNS_BROADCAST", "100000"))
TARGETS = {"webhook": 1000, "email": 300}
TARGET_P99_SECONDS = 2.0
WRITE_KEY = "bench_campaigns_write_key_0123456789"
SENDERS = 8  # connections the latency run posts events on


# -- receivers (a process of their own) --------------------------------------------------------


def _receivers(http_port: int, smtp_port: int, arrivals: Any) -> None:
    """Serve until killed; put (channel, key, monotonic time) on `arrivals` for each message:
    the key is the webhook message's `key` or the email's recipient."""
    import asyncio
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiosmtpd.controller import Controller

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            at = time.monotonic()
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            message = json.loads(body).get("data", {}).get("message")
            key = message.get("key") if isinstance(message, dict) else None
            arrivals.put(("webhook", key, at))

        def log_message(self, *args: object) -> None:
            pass

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            arrivals.put(("email", envelope.rcpt_tos[0], time.monotonic()))
            return "250 OK"

    server = ThreadingHTTPServer(("127.0.0.1", http_port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Controller(Sink(), hostname="127.0.0.1", port=smtp_port).start()
    asyncio.run(asyncio.Event().wait())


class Arrivals:
    """Arrival times reported by the receivers' process, by (channel, key)."""

    def __init__(self, queue: Any) -> None:
        self.at: dict[tuple[str, Any], float] = {}
        self.count = {"webhook": 0, "email": 0}
        self.lock = threading.Lock()
        threading.Thread(target=self._drain, args=(queue,), daemon=True).start()

    def _drain(self, queue: Any) -> None:
        while True:
            channel, key, at = queue.get()
            with self.lock:
                self.count[channel] += 1
                if key is not None:
                    self.at.setdefault((channel, key), at)

    def keyed(self, channel: str, prefix: str) -> int:
        """How many distinct keys starting with `prefix` arrived on `channel`."""
        with self.lock:
            keys = [key for kind, key in self.at if kind == channel]
        return sum(1 for key in keys if str(key).startswith(prefix))

    def wait_for(self, channel: str, prefix: str, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.keyed(channel, prefix) >= count:
                return True
            time.sleep(0.2)
        return False


# -- 1. throughput -------------------------------------------------------------------------------
def _throughput(profile_dir: str = "") -> None:
    import cProfile

    import django

    django.setup()
    import smtplib
    from email.message import EmailMessage

    import httpx
    from django.conf import settings
    from django.urls import reverse
    from django.utils import timezone

    from campaigns import services
    from campaigns.models import Campaign, CampaignVersion, Delivery, Entry
    from campaigns.services.delivery import SEND_BATCH
    from identity.models import Identity
    from profiles.models import Profile

    http_port, smtp_port = int(os.environ["BENCH_HTTP_PORT"]), int(os.environ["BENCH_SMTP_PORT"])
    settings.EMAIL_PORT = smtp_port
    hook, _ = services.channel_create(
        kind="webhook", name="bench", config={"url": f"http://127.0.0.1:{http_port}/"}, actor=None
    )
    mail, _ = services.channel_create(
        kind="email", name="bench", config={"from": "bench@example.com"}, actor=None
    )
    people = Profile.objects.bulk_create(
        Profile(traits={"first_name": f"P{n}"}) for n in range(SENDS)
    )
    Identity.objects.bulk_create(
        Identity(kind="email", value=f"p{p.pk}@example.com", profile=p) for p in people
    )

    def queued(channel: Any, message: dict[str, Any]) -> list[int]:
        created = Campaign.objects.create(name=f"bench {channel.kind}", status="active")
        version = CampaignVersion.objects.create(
            campaign=created,
            number=1,
            definition={
                "trigger": {"event": "Never"},
                "steps": [{"send": {"channel": channel.pk, "message": message}}],
            },
        )
        now = timezone.now()
        entries = Entry.objects.bulk_create(
            Entry(campaign=created, version=version, profile=p, number=1, entered_at=now)
            for p in people
        )
        return [
            d.pk
            for d in Delivery.objects.bulk_create(
                Delivery(
                    campaign=created,
                    version=version,
                    entry=e,
                    profile_id=e.profile_id,
                    step="/steps/0",
                    channel=channel,
                )
                for e in entries
            )
        ]

    # A worker that has run for a while has its URL resolver built (unsubscribe links).
    reverse("campaigns-public:unsubscribe", args=["warm-up"])
    print(
        f"1. throughput, {SENDS} sends per channel, one process, batches of {SEND_BATCH}, "
        f"{settings.CAMPAIGN_SEND_CONCURRENCY} sends in flight (connections):"
    )
    for kind, channel, message in (
        ("webhook", hook, {"hello": "{{ profile.traits.first_name }}"}),
        ("email", mail, {"subject": "Hi {{ profile.traits.first_name }}", "text": "Hello"}),
    ):
        ids = queued(channel, message)
        load_before = os.getloadavg()[0]
        profiler = cProfile.Profile() if profile_dir else None
        started, cpu_started = time.monotonic(), time.process_time()
        if profiler is not None:
            profiler.enable()
        for start in range(0, len(ids), SEND_BATCH):
            services.deliveries_send(delivery_ids=ids[start : start + SEND_BATCH])
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(Path(profile_dir) / f"{kind}.prof"))
        ours = SENDS / (time.monotonic() - started)
        ours_cpu = (time.process_time() - cpu_started) * 1000 / SENDS
        sent = Delivery.objects.filter(pk__in=ids, status="sent").count()
        started, cpu_started = time.monotonic(), time.process_time()
        if kind == "webhook":
            with httpx.Client() as bare_client:
                for _ in range(SENDS):
                    bare_client.post(
                        f"http://127.0.0.1:{http_port}/",
                        content=b'{"hello":"P1"}',
                        headers={"Content-Type": "application/json"},
                    )
        else:
            with smtplib.SMTP("127.0.0.1", smtp_port) as client:
                for n in range(SENDS):
                    bare = EmailMessage()
                    bare["From"], bare["To"], bare["Subject"] = (
                        "b@example.com",
                        f"x{n}@example.com",
                        "Hi",
                    )
                    bare.set_content("Hello")
                    client.send_message(bare)
        bare_rate = SENDS / (time.monotonic() - started)
        bare_cpu = (time.process_time() - cpu_started) * 1000 / SENDS
        bare_name = "httpx loop" if kind == "webhook" else "smtplib loop"
        print(
            f"   {kind:8} {ours:7,.0f} sends/s ({sent} sent)   bare {bare_name} "
            f"{bare_rate:7,.0f}/s   ratio {ours / bare_rate:.2f}   "
            f"(target >= {TARGETS[kind]:,}/s)\n"
            f"            CPU per 1,000 sends: {ours_cpu:.2f} s (bare {bare_cpu:.2f} s); load "
            f"average before / after {load_before:.1f} / {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores",
            flush=True,
        )


# -- 2. latency ----------------------------------------------------------------------------------
def _latency_setup() -> None:
    """Channels, two zero-wait campaigns on "Product Added", and a write key (in the bench
    database, from a process of its own)."""
    import django

    django.setup()
    from access.services import source_create
    from campaigns import services

    http_port = int(os.environ["BENCH_HTTP_PORT"])
    source_create(name="bench", write_key=WRITE_KEY)
    hook, _ = services.channel_create(
        kind="webhook",
        name="latency hook",
        config={"url": f"http://127.0.0.1:{http_port}/"},
        actor=None,
    )
    mail, _ = services.channel_create(
        kind="email", name="latency mail", config={"from": "bench@example.com"}, actor=None
    )
    for channel, message in (
        (mail, {"subject": "Your cart", "text": "Come back {{ event.properties.key }}"}),
        (hook, {"key": "{{ event.properties.key }}"}),
    ):
        services.campaign_create(
            name=f"latency {channel.kind}",
            kind="marketing",
            definition={
                "trigger": {"event": "Product Added"},
                "entry": "every_time",
                "steps": [
                    {"wait": {"seconds": 0}},
                    {"send": {"channel": channel.pk, "message": message}},
                ],
            },
            status="active",
            actor=None,
        )


def _post(connection: http.client.HTTPConnection, path: str, body: dict[str, Any]) -> int:
    auth = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
    connection.request(
        "POST",
        path,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": auth},
    )
    response = connection.getresponse()
    response.read()
    return response.status


def _identify_everyone(count: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    for start in range(0, count, 100):
        batch = [
            {
                "type": "identify",
                "userId": f"lat-{n}",
                "traits": {"email": f"lat-{n}@example.com"},
                "messageId": f"identify-{n}",
            }
            for n in range(start, min(count, start + 100))
        ]
        _post(connection, "/v1/batch", {"batch": batch})
    connection.close()


def _wait_processed(timeout: float) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    conn = psycopg2.connect(DATABASE_URL)
    conn.autocommit = True
    with conn.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM profiles_event WHERE processed_at IS NULL")
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.2)
    conn.close()


def _paced_tracks(count: int, rate: float) -> dict[str, float]:
    """POST `count` track events at `rate`/s on SENDERS connections; {key: time of the 200}."""
    accepted: dict[str, float] = {}
    next_index = iter(range(count))
    lock = threading.Lock()
    start = time.monotonic() + 0.5

    def sender() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        while True:
            with lock:
                n = next(next_index, None)
            if n is None:
                break
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            key = f"k{n}"
            body = {
                "userId": f"lat-{n}",
                "event": "Product Added",
                "properties": {"key": key},
                "messageId": f"track-{n}-{uuid.uuid4().hex}",
            }
            try:
                status = _post(connection, "/v1/track", body)
            except (OSError, http.client.HTTPException):
                # The server closed an idle keep-alive connection: a new one, the same event.
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
                status = _post(connection, "/v1/track", body)
            if status == 200:
                accepted[key] = time.monotonic()
        connection.close()

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return accepted


def _workers_start(env: dict[str, str], processes: list[subprocess.Popen]) -> None:
    """The web server and the Celery workers (2, 3), on an emptied Redis."""
    import redis

    redis.Redis.from_url(REDIS_URL).delete(
        "ingest", "default", "ml", "unacked", "unacked_index", "unacked_mutex"
    )
    logs = ROOT / "bench" / "results"
    logs.mkdir(exist_ok=True)
    served = {**env, "REDIS_URL": REDIS_URL}
    processes += [
        _start(
            [sys.executable, "-m", "cdp.web"],
            {**served, "WEB_BIND": f"127.0.0.1:{PORT}", "WEB_CONCURRENCY": "1"},
            logs / "campaigns-web.log",
        ),
        _start(
            celery_worker_command(queues="ingest,default", concurrency=WORKERS),
            served,
            logs / "campaigns-celery.log",
        ),
    ]
    server_wait(PORT)


def _latency(env: dict[str, str], arrivals: Arrivals, processes: list[subprocess.Popen]) -> None:
    subprocess.run(
        [sys.executable, "-c", "from bench.campaigns import _latency_setup; _latency_setup()"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    _identify_everyone(EVENTS)
    _wait_processed(timeout=300)
    cpu_before = [_tree_cpu_seconds(process.pid) for process in processes]
    load_before = os.getloadavg()[0]
    accepted = _paced_tracks(EVENTS, RATE)
    arrivals.wait_for("email", "lat-", len(accepted), timeout=120)
    arrivals.wait_for("webhook", "k", len(accepted), timeout=120)
    web_cpu, workers_cpu = (
        (_tree_cpu_seconds(process.pid) - before) * 1000 / EVENTS
        for process, before in zip(processes, cpu_before, strict=True)
    )
    print(
        f"2. trigger to delivery, {EVENTS} events at {RATE:.0f}/s through the web server and "
        f"{WORKERS} Celery worker processes (Redis), a zero wait, {len(accepted)} answered 200:\n"
        f"   CPU per 1,000 events (each one email and one webhook): web server "
        f"{web_cpu:.2f} s, workers {workers_cpu:.2f} s; load average before / after "
        f"{load_before:.1f} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    for channel in ("email", "webhook"):
        keys = {
            "email": lambda n: f"lat-{n}@example.com",
            "webhook": lambda n: f"k{n}",
        }[channel]
        latencies = [
            arrivals.at[(channel, keys(int(key[1:])))] - at
            for key, at in accepted.items()
            if (channel, keys(int(key[1:]))) in arrivals.at
        ]
        if len(latencies) < 2:
            print(f"   {channel:8} {len(latencies)} of {len(accepted)} arrived")
            continue
        cuts = statistics.quantiles(latencies, n=100)
        print(
            f"   {channel:8} {len(latencies)}/{len(accepted)} arrived: "
            f"p50 {cuts[49] * 1000:,.0f} ms   p99 {cuts[98] * 1000:,.0f} ms   "
            f"(target p99 < {TARGET_P99_SECONDS:.0f} s)",
            flush=True,
        )


# -- 3. broadcast --------------------------------------------------------------------------------
def _broadcast_setup() -> None:
    """BROADCAST segment members and a broadcast campaign sending each a webhook, its first
    batch queued on the broker (the workers do the rest, as beat's broadcasts_due would)."""
    import django

    django.setup()
    from django.utils import timezone

    from campaigns import services
    from campaigns.queue import task_queue
    from profiles.models import Profile
    from segments.models import Segment, SegmentMembership

    http_port = int(os.environ["BENCH_HTTP_PORT"])
    hook, _ = services.channel_create(
        kind="webhook",
        name="broadcast hook",
        config={"url": f"http://127.0.0.1:{http_port}/"},
        actor=None,
    )
    segment = Segment.objects.create(name="bench", definition={"trait": "x", "op": "exists"})
    for start in range(0, BROADCAST, 10_000):
        members = Profile.objects.bulk_create(
            Profile(traits={"x": n}) for n in range(start, min(BROADCAST, start + 10_000))
        )
        SegmentMembership.objects.bulk_create(
            SegmentMembership(segment=segment, profile=p, entered_at=timezone.now())
            for p in members
        )
    broadcast = services.campaign_create(
        name="bench broadcast",
        kind="marketing",
        definition={
            "trigger": {"broadcast": {"segment": segment.pk, "at": timezone.now().isoformat()}},
            "steps": [{"send": {"channel": hook.pk, "message": {"key": "b{{ profile.id }}"}}}],
        },
        status="active",
        actor=None,
    )
    task_queue("broadcast_batch_task", broadcast.pk)


def _tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by a process and its descendants (/proc)."""
    ticks = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and all its descendants (/proc), in MiB."""
    pages = 0
    for member in _tree(pid):
        try:
            pages += int(Path(f"/proc/{member}/statm").read_text().split()[1])
        except OSError:
            continue
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _broadcast(
    env: dict[str, str], arrivals: Arrivals, workers: subprocess.Popen, count: int
) -> None:
    baseline = _tree_rss_mib(workers.pid)
    subprocess.run(
        [sys.executable, "-c", "from bench.campaigns import _broadcast_setup; _broadcast_setup()"],
        cwd=ROOT,
        env={**env, "REDIS_URL": REDIS_URL},
        check=True,
    )
    started, peak = time.monotonic(), baseline
    deadline = started + 1800
    while arrivals.keyed("webhook", "b") < count and time.monotonic() < deadline:
        peak = max(peak, _tree_rss_mib(workers.pid))
        time.sleep(0.5)
    sent = arrivals.keyed("webhook", "b")
    with arrivals.lock:
        last = max(
            (at for (kind, key), at in arrivals.at.items() if str(key).startswith("b")),
            default=started,
        )
    elapsed = last - started
    print(
        f"3. broadcast to {count:,} segment members, webhook channel, {WORKERS} Celery "
        f"worker processes: {sent:,} arrived in {elapsed:,.1f} s ({sent / elapsed:,.0f}/s); "
        f"workers' resident memory peak {peak:,.0f} MiB (idle {baseline:,.0f} MiB)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench campaigns")
    parser.add_argument("--only", default="throughput,latency,broadcast")
    parser.add_argument("--broadcast", type=int, help="recipients (BENCH_CAMPAIGNS_BROADCAST)")
    parser.add_argument("--profile", default="", help="directory for (1)'s cProfile output")
    args = parser.parse_args(sys.argv[1:])
    parts = set(args.only.split(","))
    database_recreate(DATABASE_URL)
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "DJANGO_SETTINGS_MODULE": "cdp.settings",
        "LOG_LEVEL": "WARNING",
        "OUTBOUND_ALLOWED_HOSTS": "127.0.0.1",
        "CAMPAIGN_QUIET_HOURS": "",
        "CAMPAIGN_FREQUENCY_CAP": "1000000/1",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DEBUG": "false",
    }
    env["BENCH_CAMPAIGNS_BROADCAST"] = str(args.broadcast or BROADCAST)
    env.pop("REDIS_URL", None)  # (1): tasks after commit run inline, no broker
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    http_port, smtp_port = free_port(), free_port()
    env.update(BENCH_HTTP_PORT=str(http_port), BENCH_SMTP_PORT=str(smtp_port))
    env["EMAIL_PORT"] = str(smtp_port)
    queue: Any = multiprocessing.Queue()
    receivers = multiprocessing.Process(
        target=_receivers, args=(http_port, smtp_port, queue), daemon=True
    )
    receivers.start()
    arrivals = Arrivals(queue)
    processes: list[subprocess.Popen] = []
    try:
        if "throughput" in parts:
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from bench.campaigns import _throughput; _throughput({args.profile!r})",
                ],
                cwd=ROOT,
                env=env,
                check=True,
            )
        if parts & {"latency", "broadcast"}:
            _workers_start(env, processes)
        if "latency" in parts:
            _latency(env, arrivals, processes)
        if "broadcast" in parts:
            _broadcast(env, arrivals, processes[1], int(env["BENCH_CAMPAIGNS_BROADCAST"]))
    finally:
        _stop(processes)
        receivers.terminate()


if __name__ == "__main__":
    main()
