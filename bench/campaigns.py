"""Campaigns benchmark: the delivery path's throughput to local receivers beside a bare client,
trigger-to-delivery latency, and a broadcast's entry into a large segment.

What it does, on a dedicated database (`cdp_bench_campaigns`, dropped and migrated first), in
one process (no broker: tasks queued after commit run inline, as with no REDIS_URL):
1. throughput: BENCH_CAMPAIGNS_SENDS queued deliveries per channel are sent with
   `delivery_send` (consent gate, caps, rendering, signing, recording: the whole path) to a
   local Standard Webhooks receiver and to a local SMTP sink (aiosmtpd); the same number of
   bare `http.client` POSTs and `smtplib` sends on one connection are timed in the same run;
   both figures and their ratio are printed;
2. latency: BENCH_CAMPAIGNS_EVENTS single "Product Added" events go through the pipeline, one
   at a time, into a zero-wait journey; p50/p99 from the processing call to the message's
   arrival at the SMTP sink (ingestion and the broker are not in this figure);
3. broadcast: BENCH_CAMPAIGNS_BROADCAST segment members are entered by `broadcast_batch` in
   its self-requeuing batches, each batch's first steps run inline after its commit (an empty
   journey here: sending is (1)'s figure): time and peak Python memory.

Environment: BENCH_CAMPAIGNS_DATABASE_URL (postgres://postgres@127.0.0.1:5432/cdp_bench_campaigns),
BENCH_CAMPAIGNS_SENDS (2000), BENCH_CAMPAIGNS_EVENTS (200), BENCH_CAMPAIGNS_BROADCAST (100000).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from bench import database_recreate

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_CAMPAIGNS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench_campaigns"
)
SENDS = int(os.environ.get("BENCH_CAMPAIGNS_SENDS", "2000"))
EVENTS = int(os.environ.get("BENCH_CAMPAIGNS_EVENTS", "200"))
BROADCAST = int(os.environ.get("BENCH_CAMPAIGNS_BROADCAST", "100000"))
TARGETS = {"webhook": 1000, "email": 300}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _child() -> None:
    import django

    django.setup()
    import smtplib
    import threading
    from email.message import EmailMessage
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import httpx
    from aiosmtpd.controller import Controller
    from django.conf import settings
    from django.core.management import call_command
    from django.urls import reverse
    from django.utils import timezone

    from access.services import source_create
    from campaigns import services
    from campaigns.models import Campaign, CampaignVersion, Delivery, Entry
    from campaigns.services.delivery import SEND_BATCH
    from cdp import pipeline
    from identity.models import Identity
    from profiles.models import Event, Profile
    from segments.models import Segment, SegmentMembership

    call_command("migrate", verbosity=0)
    received = {"http": 0, "smtp": 0, "smtp_at": {}}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received["http"] += 1
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            received["smtp"] += 1
            received["smtp_at"][envelope.rcpt_tos[0]] = time.monotonic()
            return "250 OK"

    http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    http_port = http_server.server_address[1]
    smtp_port = _free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    controller.start()
    settings.EMAIL_PORT = smtp_port

    admin = None
    hook, _ = services.channel_create(
        kind="webhook", name="bench", config={"url": f"http://127.0.0.1:{http_port}/"}, actor=admin
    )
    mail, _ = services.channel_create(
        kind="email", name="bench", config={"from": "bench@example.com"}, actor=admin
    )
    people = Profile.objects.bulk_create(
        Profile(traits={"first_name": f"P{n}"}) for n in range(SENDS)
    )
    Identity.objects.bulk_create(
        Identity(kind="email", value=f"p{p.pk}@example.com", profile=p) for p in people
    )

    def campaign(channel, message) -> tuple[Campaign, CampaignVersion]:
        created = Campaign.objects.create(name=f"bench {channel.kind}", status="active")
        version = CampaignVersion.objects.create(
            campaign=created,
            number=1,
            definition={
                "trigger": {"event": "Never"},
                "steps": [{"send": {"channel": channel.pk, "message": message}}],
            },
        )
        return created, version

    def queued(channel, message) -> list[int]:
        created, version = campaign(channel, message)
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
    print(f"throughput, {SENDS} sends per channel, one process:")
    for kind, channel, message in (
        ("webhook", hook, {"hello": "{{ profile.traits.first_name }}"}),
        ("email", mail, {"subject": "Hi {{ profile.traits.first_name }}", "text": "Hello"}),
    ):
        ids = queued(channel, message)
        started = time.monotonic()
        for start in range(0, len(ids), SEND_BATCH):
            services.deliveries_send(delivery_ids=ids[start : start + SEND_BATCH])
        ours = SENDS / (time.monotonic() - started)
        sent = Delivery.objects.filter(pk__in=ids, status="sent").count()
        started = time.monotonic()
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
        print(
            f"  {kind:8} {ours:8,.0f} sends/s ({sent} sent)   bare client {bare_rate:8,.0f}/s"
            f"   ratio {ours / bare_rate:.2f}   (target >= {TARGETS[kind]:,}/s)",
            flush=True,
        )

    source = source_create(name="bench").record
    created, _ = campaign(mail, {"subject": "Cart", "text": "Come back"})
    CampaignVersion.objects.filter(campaign=created).update(
        definition={
            "trigger": {"event": "Product Added"},
            "entry": "every_time",
            "steps": [{"send": {"channel": mail.pk, "message": {"subject": "Cart", "text": "x"}}}],
        }
    )
    latencies = []
    for n in range(EVENTS):
        address = f"late{n}@example.com"
        someone = Profile.objects.create()
        Identity.objects.create(kind="user_id", value=f"latency-{n}", profile=someone)
        Identity.objects.create(kind="email", value=address, profile=someone)
        now = timezone.now()
        event = Event.objects.create(
            source=source,
            message_id=f"latency-{n}",
            type="track",
            event="Product Added",
            user_id=f"latency-{n}",
            timestamp=now,
            received_at=now,
        )
        started = time.monotonic()
        pipeline.events_process(event_ids=[event.pk])
        arrived = received["smtp_at"].get(address)
        if arrived is not None:
            latencies.append(arrived - started)
    if latencies:
        cuts = statistics.quantiles(latencies, n=100)
        print(
            f"trigger to SMTP sink, {len(latencies)}/{EVENTS} events one at a time (in-process):"
            f" p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms   (target p99 < 2 s)"
        )
    else:
        print(f"trigger to SMTP sink: none of {EVENTS} arrived (no email identity resolved?)")

    members = Profile.objects.bulk_create(Profile() for _ in range(BROADCAST))
    segment = Segment.objects.create(name="bench", definition={"trait": "x", "op": "exists"})
    SegmentMembership.objects.bulk_create(
        (SegmentMembership(segment=segment, profile=p, entered_at=timezone.now()) for p in members),
        batch_size=5000,
    )
    broadcast = Campaign.objects.create(name="bench broadcast", status="active")
    CampaignVersion.objects.create(
        campaign=broadcast,
        number=1,
        definition={
            "trigger": {"broadcast": {"segment": segment.pk, "at": timezone.now().isoformat()}},
            "steps": [],
        },
    )
    tracemalloc.start()
    started = time.monotonic()
    while services.broadcast_batch(campaign_id=broadcast.pk):
        pass
    elapsed = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    entered = Entry.objects.filter(campaign=broadcast).count()
    print(
        f"broadcast: {entered:,} of {BROADCAST:,} members entered in {elapsed:.1f} s "
        f"({entered / elapsed:,.0f}/s), peak Python memory {peak / 2**20:.0f} MiB"
    )
    controller.stop()
    http_server.shutdown()


def main() -> None:
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
    }
    env.pop("REDIS_URL", None)  # tasks after commit run inline: one process, no broker
    subprocess.run(
        [sys.executable, "-c", "from bench.campaigns import _child; _child()"],
        cwd=ROOT,
        env=env,
        check=True,
    )


if __name__ == "__main__":
    main()
