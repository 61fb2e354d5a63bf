"""Figures for /metrics and the dashboard, read from the database at scrape time so that every
web node reports the same numbers.

Every query here must stay cheap on tables of hundreds of millions of events: counts over a
time window go through the `received_at` index, pending events through their partial index,
and whole-table totals use PostgreSQL's planner estimate once a table is large.
"""

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Model
from django.db.models.functions import TruncMinute
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from access.metrics import COLLECTORS

# Above this many rows an exact COUNT(*) costs seconds; the planner's estimate is good enough.
EXACT_COUNT_LIMIT = 1_000_000
DASHBOARD_WINDOWS_HOURS = (1, 3, 6, 24)
DASHBOARD_DEFAULT_HOURS = 3
# Several browsers refresh every 10 s; they share one computation per window for this long.
DASHBOARD_CACHE_SECONDS = 5


@dataclass(frozen=True)
class Tally:
    value: int
    approximate: bool = False


def _estimated_rows(model: type[Model]) -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    # -1 means "never analyzed": fall back to counting.
    return int(row[0]) if row and row[0] >= 0 else None


def _table_total(model: type[Model]) -> Tally:
    estimate = _estimated_rows(model)
    if estimate is not None and estimate > EXACT_COUNT_LIMIT:
        return Tally(estimate, approximate=True)
    return Tally(model._default_manager.count())


def _live_profiles() -> Tally:
    Profile = apps.get_model("profiles", "Profile")
    estimate = _estimated_rows(Profile)
    if estimate is not None and estimate > EXACT_COUNT_LIMIT:
        return Tally(estimate, approximate=True)
    return Tally(Profile.objects.filter(merged_into__isnull=True).count())


def _table_counts() -> dict[str, Tally]:
    Event = apps.get_model("profiles", "Event")
    Quarantined = apps.get_model("profiles", "QuarantinedMessage")
    return {
        "profiles": _live_profiles(),
        "events": _table_total(Event),
        # The partial index on unprocessed events keeps this proportional to the backlog.
        "events_pending": Tally(Event.objects.filter(processed_at__isnull=True).count()),
        "quarantined": _table_total(Quarantined),
    }


@dataclass(frozen=True)
class Backlog:
    """The processing backlog, as /healthz and /metrics report it."""

    pending: int  # counted up to the threshold + 1: beyond it, "over" is all that matters
    over_threshold: bool
    lag_seconds: float  # age of the oldest unprocessed event, 0 without any
    last_sweep_at: datetime | None


def processing_backlog() -> Backlog:
    """Unprocessed events (ingestion keeps accepting them past the threshold: they are
    durable, so this only says that processing is behind) and when the sweep last ran."""
    Event = apps.get_model("profiles", "Event")
    Heartbeat = apps.get_model("cdp", "Heartbeat")
    from cdp.models import SWEEP_HEARTBEAT

    threshold = settings.INGEST_BACKLOG_THRESHOLD
    pending = Event.objects.filter(processed_at__isnull=True).values("pk")[: threshold + 1].count()
    oldest = _oldest_pending_received_at() if pending else None
    sweep = Heartbeat.objects.filter(name=SWEEP_HEARTBEAT).first()
    return Backlog(
        pending=pending,
        over_threshold=pending > threshold,
        lag_seconds=max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0,
        last_sweep_at=sweep.at if sweep else None,
    )


class _TableCollector:
    def collect(self):
        for name, count in _table_counts().items():
            yield GaugeMetricFamily(
                f"cdp_{name}", f"Number of {name.replace('_', ' ')}", value=count.value
            )
        backlog = processing_backlog()
        yield GaugeMetricFamily(
            "cdp_processing_lag_seconds",
            "Age of the oldest accepted event not yet processed (0 when none)",
            value=backlog.lag_seconds,
        )
        yield GaugeMetricFamily(
            "cdp_processing_backpressure",
            "1 when unprocessed events exceed INGEST_BACKLOG_THRESHOLD (ingestion still accepts)",
            value=int(backlog.over_threshold),
        )
        if backlog.last_sweep_at is not None:
            yield GaugeMetricFamily(
                "cdp_pending_sweep_last_run_timestamp_seconds",
                "When the beat sweep of lost processing work last ran (Unix time)",
                value=backlog.last_sweep_at.timestamp(),
            )


def prometheus_exposition() -> tuple[bytes, str]:
    """The database's figures and the processes' counters (access.metrics): this machine's
    processes added up when PROMETHEUS_MULTIPROC_DIR is set, else this process's."""
    registry = CollectorRegistry()
    registry.register(_TableCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in COLLECTORS:
            registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


# A minute's count is final once no request that started in it can still be committing.
MINUTE_SETTLED_AFTER = timedelta(minutes=2)
MINUTE_CACHE_SECONDS = 25 * 3600


def _minute_key(minute: datetime) -> str:
    return f"events-minute:{int(minute.timestamp())}"


def _events_by_minute_and_source(*, since: datetime, until: datetime) -> dict[datetime, dict]:
    """{minute: {source id: events received}} for every whole minute in [since, until).

    Settled minutes are cached, so a dashboard refreshing every few seconds only queries the
    last couple of minutes; a cold window is one grouped query over the received_at index.
    """
    Event = apps.get_model("profiles", "Event")
    start = since.replace(second=0, microsecond=0)
    minutes = []
    minute = start
    while minute < until:
        minutes.append(minute)
        minute += timedelta(minutes=1)
    keys = {minute: _minute_key(minute) for minute in minutes}
    cached = cache.get_many(list(keys.values()))
    result = {minute: cached[key] for minute, key in keys.items() if key in cached}
    missing = [minute for minute in minutes if minute not in result]
    if missing:
        low, high = missing[0], missing[-1] + timedelta(minutes=1)
        fresh: dict[datetime, dict] = {minute: {} for minute in minutes if low <= minute < high}
        rows = (
            Event.objects.filter(received_at__gte=low, received_at__lt=high)
            .annotate(minute=TruncMinute("received_at"))
            .values_list("minute", "source_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for minute, source_id, n in rows:
            fresh.setdefault(minute, {})[source_id] = n
        settled_before = timezone.now() - MINUTE_SETTLED_AFTER
        cache.set_many(
            {
                keys[minute]: counts
                for minute, counts in fresh.items()
                if minute + timedelta(minutes=1) <= settled_before
            },
            MINUTE_CACHE_SECONDS,
        )
        result.update(fresh)
    return {minute: result.get(minute, {}) for minute in minutes}


def events_per_minute(*, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """Events received in each whole minute of [since, until), zeros included, oldest first."""
    by_minute = _events_by_minute_and_source(since=since, until=until)
    return [(minute, sum(counts.values())) for minute, counts in by_minute.items()]


def events_by_source(*, since: datetime, until: datetime | None = None) -> list[dict[str, Any]]:
    """Every source with its events received in whole minutes since a moment, busiest first."""
    Source = apps.get_model("access", "Source")
    until = until or timezone.now().replace(second=0, microsecond=0)
    counts: dict[int, int] = {}
    for per_source in _events_by_minute_and_source(since=since, until=until).values():
        for source_id, n in per_source.items():
            counts[source_id] = counts.get(source_id, 0) + n
    sources = [
        {
            "id": source.pk,
            "name": source.name,
            "enabled": source.enabled,
            "last_event_at": source.last_event_at,
            "events": counts.get(source.pk, 0),
        }
        for source in Source.objects.order_by("name")
    ]
    return sorted(sources, key=lambda row: (-row["events"], row["name"]))


def _oldest_pending_received_at() -> datetime | None:
    Event = apps.get_model("profiles", "Event")
    return (
        Event.objects.filter(processed_at__isnull=True)
        .order_by("id")
        .values_list("received_at", flat=True)
        .first()
    )


def _quarantined_since(since: datetime) -> int:
    Quarantined = apps.get_model("profiles", "QuarantinedMessage")
    return Quarantined.objects.filter(received_at__gte=since).count()


def dashboard_figures(*, hours: int = DASHBOARD_DEFAULT_HOURS) -> dict[str, Any]:
    """Everything the dashboard shows for a window of the last `hours` hours."""
    key = f"dashboard-figures:{hours}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    now = timezone.now()
    # Whole minutes only: the current minute is still filling and would plot as a drop.
    until = now.replace(second=0, microsecond=0)
    since = until - timedelta(hours=hours)
    series = events_per_minute(since=since, until=until)
    in_window = sum(n for _, n in series)
    oldest_pending = _oldest_pending_received_at()
    figures = {
        "hours": hours,
        "windows": DASHBOARD_WINDOWS_HOURS,
        "generated_at": now,
        "counts": _table_counts(),
        "events_in_window": in_window,
        "events_per_minute_avg": round(in_window / max(len(series), 1), 1),
        "events_per_minute_peak": max((n for _, n in series), default=0),
        "pending_oldest_at": oldest_pending,
        "pending_lag_seconds": int((now - oldest_pending).total_seconds())
        if oldest_pending
        else None,
        "quarantined_24h": _quarantined_since(now - timedelta(hours=24)),
        "sources": events_by_source(since=since, until=until),
        "chart": {
            "labels": [minute.strftime("%H:%M") for minute, _ in series],
            "datasets": [{"label": "Events per minute", "data": [n for _, n in series]}],
        },
    }
    cache.set(key, figures, DASHBOARD_CACHE_SECONDS)
    return figures
