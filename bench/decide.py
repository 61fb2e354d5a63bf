"""Personalised content benchmark (issue 18): a decision for a known visitor through HTTP.

On a database of its own (BENCH_DECIDE_DATABASE_URL, dropped and migrated first) and a
redis-server of its own (bench.PrivateRedis, the cache): BENCH_DECIDE_VISITORS (3,000)
profiles known by an anonymous id, each with 5 to 40 `Product Viewed` events over the last 60
days in 10 categories; 50 segments whose conditions need that event history ("viewed category
C at least K times in the last 30 days", K = 1..5), their membership computed by the segments
stage (segment_refresh); 5 placements with 10 active experiences each (50), each targeting one
segment, in priority order, two variants on a fixed split, a 10% holdout and Liquid content.

Then the real web server (`python -m cdp.web`, as bench/ingest.py runs it) answers
`GET /v1/decide?placement=...&anonymousId=...&path=...&writeKey=...` offered open loop at a
fixed rate (BENCH_DECIDE_RATES: 100/s, then 300/s) on 32 keep-alive connections for
BENCH_DECIDE_SECONDS (10) each, visitors and placements drawn at random: first decisions
(which write the sticky assignment) and repeat ones mixed, as a site's traffic is. Beside
each, in the same run: `GET /v1/projects/{writeKey}/settings` on the same server at the same
rate (the same /v1/ path through the server; its answer is one cached read); and a bare cache
read (`cache.get` of one key from this process, one at a time), the cost of the cache itself.

`python -m bench decide`
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_DECIDE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench_decide"
)
VISITORS = int(os.environ.get("BENCH_DECIDE_VISITORS", "3000"))
RATES = [float(r) for r in os.environ.get("BENCH_DECIDE_RATES", "100,300").split(",")]
SECONDS = float(os.environ.get("BENCH_DECIDE_SECONDS", "10"))
CONNECTIONS = 32
CATEGORIES = [f"cat{n}" for n in range(10)]
PLACEMENTS = ["home_hero", "cart_banner", "footer_offer", "onboarding_step_1", "search_tip"]
WRITE_KEY = "bench_decide_write_key_0123456789"
TARGET_P99_MS = 10.0


def _load(print_fn) -> None:
    """Visitors with event history, 50 segments refreshed from it, 50 active experiences."""
    from django.utils import timezone

    from access.models import Source
    from experiences.services import experience_create, placement_create
    from identity.models import Identity
    from profiles.models import Event, Profile
    from segments.services import segment_create, segment_refresh

    began = time.perf_counter()
    rng = random.Random(18)
    now = timezone.now()
    source = Source.objects.get()
    profiles = Profile.objects.bulk_create(
        [Profile(traits={"plan": rng.choice(["free", "pro"])}) for _ in range(VISITORS)],
        batch_size=2000,
    )
    Identity.objects.bulk_create(
        [Identity(kind="anonymous_id", value=f"anon-{p.pk}", profile=p) for p in profiles],
        batch_size=2000,
    )
    events = []
    for profile in profiles:
        for n in range(rng.randint(5, 40)):
            at = now - timezone.timedelta(days=rng.uniform(0, 60))
            events.append(
                Event(
                    source=source,
                    message_id=f"view-{profile.pk}-{n}",
                    type="track",
                    event="Product Viewed",
                    anonymous_id=f"anon-{profile.pk}",
                    timestamp=at,
                    received_at=at,
                    processed_at=at,
                    properties={"category": rng.choice(CATEGORIES)},
                    payload={},
                    profile=profile,
                )
            )
    Event.objects.bulk_create(events, batch_size=5000)
    segments = []
    for category in CATEGORIES:
        for times in range(1, 6):
            segment = segment_create(
                name=f"Viewed {category} {times}+ times in 30 days",
                definition={
                    "event": "Product Viewed",
                    "where": [{"property": "category", "op": "eq", "value": category}],
                    "count": {"op": "gte", "value": times},
                    "within": {"days": 30},
                },
            )
            segment_refresh(segment=segment)
            segments.append(segment)
    schema = {
        "type": "object",
        "required": ["title"],
        "properties": {"title": {"type": "string"}, "link": {"type": "string"}},
    }
    for index, key in enumerate(PLACEMENTS):
        placement = placement_create(
            fields={
                "key": key,
                "name": key,
                "content_schema": schema,
                "default_content": {"title": "Welcome"},
            },
            actor=None,
        )
        # The most demanding segments first: a visitor is checked against several before
        # one matches.
        mine = segments[index * 10 : index * 10 + 10][::-1]
        for priority, segment in enumerate(mine):
            experience_create(
                fields={
                    "placement": placement,
                    "name": f"{key} for {segment.name}",
                    "status": "active",
                    "priority": priority,
                    "audience": {"segment": segment.pk},
                    "allocation": "split",
                    "holdout_percent": 10,
                    "variants": [
                        {
                            "name": "A",
                            "weight": 1,
                            "content": {"title": "Hi {{ profile.traits.plan }} " + segment.name},
                        },
                        {
                            "name": "B",
                            "weight": 1,
                            "content": {"title": "{{ page.path }}: " + segment.name},
                        },
                    ],
                },
                actor=None,
            )
    print_fn(
        f"  {VISITORS:,} visitors, {len(events):,} events, 50 segments on event history "
        f"refreshed, 50 active experiences on {len(PLACEMENTS)} placements "
        f"({time.perf_counter() - began:.1f} s)"
    )


def _cache_read_ms(count: int = 5000) -> tuple[float, float]:
    import statistics

    from django.core.cache import cache

    cache.set("bench:decide:probe", {"a": 1}, timeout=None)
    took = []
    for _ in range(count):
        began = time.perf_counter()
        cache.get("bench:decide:probe")
        took.append(time.perf_counter() - began)
    cuts = statistics.quantiles(took, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def _database_cpu_seconds() -> dict[int, float]:
    """CPU so far of each PostgreSQL backend serving this bench's database (Linux /proc; the
    server runs on this machine), by pid: the decisions' database work, which the web
    processes' CPU does not include."""
    from django.db import connection

    from bench.ingest import _process_tree_cpu_seconds

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return {pid: _process_tree_cpu_seconds(pid) for (pid,) in cursor.fetchall()}


def _measured(
    web_pid: int, port: int, paths: list[str], rate: float
) -> tuple[tuple, float, float, float]:
    """bench.paced_get's answer for these paths at this rate, with the web processes' and the
    database backends' CPU seconds it took and the load average (1 min) at its end."""
    from bench import paced_get
    from bench.ingest import _process_tree_cpu_seconds

    web_before, database_before = _process_tree_cpu_seconds(web_pid), _database_cpu_seconds()
    answer = paced_get(port, paths, headers={}, rate=rate, connections=CONNECTIONS)
    web = _process_tree_cpu_seconds(web_pid) - web_before
    database = sum(
        cpu - database_before.get(pid, 0.0) for pid, cpu in _database_cpu_seconds().items()
    )
    return answer, web, database, os.getloadavg()[0]


def main() -> int:
    from bench import PrivateRedis, database_prepare, free_port, paced_get, server_wait
    from bench.ingest import WEB_THREADS, WEB_WORKERS, _server_env, _start, _stop

    redis = PrivateRedis()
    redis.start()
    port = free_port()
    env = {**_server_env(), "DATABASE_URL": DATABASE_URL, "REDIS_URL": redis.url}
    os.environ.update(DATABASE_URL=DATABASE_URL, REDIS_URL=redis.url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    processes: list[subprocess.Popen] = []
    print(
        f"  web server as the web nodes run it (python -m cdp.web: granian, {WEB_WORKERS} "
        f"processes x {WEB_THREADS} threads; BENCH_WEB_WORKERS/BENCH_WEB_THREADS), a "
        "single-threaded event-loop client in this process; load average at start "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    try:
        database_prepare(DATABASE_URL, env, source="Bench", write_key=WRITE_KEY)
        import django

        django.setup()
        _load(print)
        logs = ROOT / "bench" / "results"
        logs.mkdir(exist_ok=True)
        web = _start(
            [sys.executable, "-m", "cdp.web"],
            {
                **env,
                "WEB_BIND": f"127.0.0.1:{port}",
                "WEB_CONCURRENCY": str(WEB_WORKERS),
                "WEB_THREADS": str(WEB_THREADS),
            },
            logs / "decide-web.log",
        )
        processes.append(web)
        server_wait(port, web)
        from profiles.models import Profile

        ids = list(Profile.objects.values_list("pk", flat=True))
        rng = random.Random(7)

        def decide_paths(count: int) -> list[str]:
            return [
                f"/v1/decide?placement={rng.choice(PLACEMENTS)}&anonymousId=anon-"
                f"{rng.choice(ids)}&path=/shop/{rng.randint(1, 50)}&writeKey={WRITE_KEY}"
                for _ in range(count)
            ]

        # Warm every server thread (imports, its database connection, the active
        # experiences' cache) off the clock.
        paced_get(port, decide_paths(256), headers={}, rate=128, connections=CONNECTIONS)
        measured = []
        for rate in RATES:
            count = int(rate * SECONDS)
            decide = _measured(web.pid, port, decide_paths(count), rate)
            base = [f"/v1/projects/{WRITE_KEY}/settings"] * count
            baseline = _measured(web.pid, port, base, rate)
            measured.append((rate, count, decide, baseline))
        c50, c99 = _cache_read_ms()
        from experiences.models import Decision

        decisions = Decision.objects.count()
    finally:
        _stop(processes)
        redis.kill()
    for rate, count, decide, baseline in measured:
        (p50, p99, answered, bad), web_cpu, db_cpu, load = decide
        (b50, b99, b_answered, b_bad), b_web_cpu, b_db_cpu, b_load = baseline
        ok = p99 < TARGET_P99_MS and not bad
        print(
            f"  GET /v1/decide, a known visitor, {rate:g} req/s offered on {CONNECTIONS} "
            f"connections for {SECONDS:g} s: {answered:,.0f} req/s answered, p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms{f', non-200: {bad}' if bad else ''}  target p99 < "
            f"{TARGET_P99_MS:g} ms  {'ok' if ok else 'MISSED'}"
        )
        print(
            f"    CPU per decision: web {web_cpu / count * 1e3:.2f} ms + database "
            f"{db_cpu / count * 1e3:.2f} ms; load average {load:.1f}"
        )
        print(
            f"    baseline, GET /v1/projects/<writeKey>/settings (one cached read), same server "
            f"and rate: {b_answered:,.0f} req/s, p50 {b50:.1f} ms, p99 {b99:.1f} ms"
            f"{f', non-200: {b_bad}' if b_bad else ''}; CPU per request: web "
            f"{b_web_cpu / count * 1e3:.2f} ms + database {b_db_cpu / count * 1e3:.2f} ms; "
            f"load average {b_load:.1f}"
        )
    print(f"  ({decisions:,} sticky decisions recorded by the end: first and repeat visits)")
    print(
        f"  baseline, a bare cache read (Redis GET from this process): p50 {c50:.2f} ms, "
        f"p99 {c99:.2f} ms"
    )
    print(f"  machine load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
