"""Prometheus counters and histograms that any layer records into (this is the bottom layer).

Web and worker processes each count their own. With PROMETHEUS_MULTIPROC_DIR set (an empty
directory per machine, the same for its web and worker processes, emptied when they start),
prometheus_client keeps the values in files there and `/metrics` adds up every process of the
machine; without it, `/metrics` reports the process that answers the scrape.

Label values are few and fixed (routes as patterns, reasons as short constants, task names):
an unbounded label (a user id, a URL) would make a series per value.
"""

from prometheus_client import Counter, Histogram
from prometheus_client.registry import Collector

# Not in prometheus_client's global registry: /metrics (cdp.metrics) builds its own per scrape.
HTTP_REQUESTS = Counter(
    "cdp_http_requests",
    "HTTP requests answered, by route pattern, method and status",
    ["route", "method", "status"],
    registry=None,
)
HTTP_REQUEST_SECONDS = Histogram(
    "cdp_http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern and method",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=None,
)
INGEST_MESSAGES = Counter(
    "cdp_ingest_messages",
    "Ingested messages by outcome (accepted, duplicate, quarantined, dropped) and reason",
    ["outcome", "reason"],
    registry=None,
)
INGEST_REQUESTS_REFUSED = Counter(
    "cdp_ingest_requests_refused",
    "Ingestion requests refused whole (nothing stored), by error code",
    ["code"],
    registry=None,
)
TASK_RUNS = Counter(
    "cdp_celery_task_runs",
    "Celery task runs by task and outcome (success, failure, retry)",
    ["task", "outcome"],
    registry=None,
)
TASK_SECONDS = Histogram(
    "cdp_celery_task_duration_seconds",
    "Celery task run time by task",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
    registry=None,
)
DELIVERIES = Counter(
    "cdp_deliveries",
    "Outbound messages by channel (email, push, webhook, segment_webhook) and outcome",
    ["channel", "outcome"],
    registry=None,
)

COLLECTORS: tuple[Collector, ...] = (
    HTTP_REQUESTS,
    HTTP_REQUEST_SECONDS,
    INGEST_MESSAGES,
    INGEST_REQUESTS_REFUSED,
    TASK_RUNS,
    TASK_SECONDS,
    DELIVERIES,
)


def http_request_record(*, route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_REQUEST_SECONDS.labels(route, method).observe(seconds)


def ingest_outcome_record(*, outcome: str, reason: str = "", count: int = 1) -> None:
    """`count` messages of one request had `outcome` (accepted, duplicate, quarantined,
    dropped) for `reason` (a short constant: "invalid message", "suppressed", ...)."""
    if count:
        INGEST_MESSAGES.labels(outcome, reason).inc(count)


def ingest_refusal_record(*, code: str) -> None:
    INGEST_REQUESTS_REFUSED.labels(code).inc()


def task_run_record(*, task: str, outcome: str, seconds: float | None = None) -> None:
    TASK_RUNS.labels(task, outcome).inc()
    if seconds is not None:
        TASK_SECONDS.labels(task).observe(seconds)


def delivery_outcome_record(*, channel: str, outcome: str) -> None:
    """One delivery attempt's end: `channel` its kind (email, push, webhook,
    segment_webhook), `outcome` what became of it (sent, failed, queued for a retry or a
    delay, skipped)."""
    DELIVERIES.labels(channel, outcome).inc()
