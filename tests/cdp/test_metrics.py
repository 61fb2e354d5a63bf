"""/metrics: requests by route and status, ingestion outcomes, task runs, processing lag."""

import json
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from access.metrics import COLLECTORS
from cdp import pipeline
from cdp.tasks import events_process_task
from identity.models import RescanJob
from identity.tasks import identity_rescan_task

from .metrics_helpers import sample

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Basic V1JJVEVfS0VZX3Rlc3QxMjM6"}  # WRITE_KEY_test123


def scraped(client) -> dict[str, float]:
    """/metrics as {"name{label=value,...}": value}."""
    text = client.get("/metrics").content.decode()
    return {
        f"{s.name}{{{','.join(f'{k}={v}' for k, v in sorted(s.labels.items()))}}}": s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_requests_are_counted_and_timed_by_route_pattern_method_and_status(client, source):
    ok = dict(route="/healthz", method="GET", status="200")
    missing = dict(route="unmatched", method="GET", status="404")
    batch = dict(route="/v1/batch", method="POST", status="200")
    before = [sample("cdp_http_requests_total", **labels) for labels in (ok, missing, batch)]
    timed = sample("cdp_http_request_duration_seconds_count", route="/healthz", method="GET")
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/page/42")
    client.post("/v1/batch", {"batch": []}, content_type="application/json", **AUTH)
    after = [sample("cdp_http_requests_total", **labels) for labels in (ok, missing, batch)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 1, 1]
    assert sample("cdp_http_request_duration_seconds_count", route="/healthz", method="GET") == (
        timed + 2
    )
    # A path with an id is counted under its pattern, never under the id.
    assert "cdp_http_requests_total{method=GET,route=/healthz,status=200}" in scraped(client)


def test_ingestion_counts_accepted_duplicate_quarantined_and_refused(client, source):
    keys = {
        "accepted": dict(outcome="accepted", reason=""),
        "duplicate": dict(outcome="duplicate", reason=""),
        "quarantined": dict(outcome="quarantined", reason="invalid message"),
    }
    before = {k: sample("cdp_ingest_messages_total", **v) for k, v in keys.items()}
    refused = sample("cdp_ingest_requests_refused_total", code="invalid_write_key")
    batch = [
        {"type": "track", "userId": "u1", "event": "A", "messageId": "1"},
        {"type": "track", "userId": "u1", "event": "A", "messageId": "1"},
        {"type": "track", "userId": "u1", "messageId": "2"},  # no event: quarantined
    ]
    client.post("/v1/batch", {"batch": batch}, content_type="application/json", **AUTH)
    client.post(
        "/v1/batch",
        {"batch": batch},
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic bm9wZTo=",
    )
    after = {k: sample("cdp_ingest_messages_total", **v) for k, v in keys.items()}
    assert {k: after[k] - before[k] for k in keys} == {
        "accepted": 1,
        "duplicate": 1,
        "quarantined": 1,
    }
    assert sample("cdp_ingest_requests_refused_total", code="invalid_write_key") == refused + 1


def test_task_runs_and_failures_are_counted_by_task_and_timed(client):
    name, failing = events_process_task.name, identity_rescan_task.name
    successes = sample("cdp_celery_task_runs_total", task=name, outcome="success")
    failures = sample("cdp_celery_task_runs_total", task=failing, outcome="failure")
    timed = sample("cdp_celery_task_duration_seconds_count", task=name)
    events_process_task.delay([])
    # As a worker runs it: the error recorded as the task's result, not raised here.
    result = identity_rescan_task.apply(args=(999_999,), throw=False)
    assert isinstance(result.result, RescanJob.DoesNotExist)
    assert sample("cdp_celery_task_runs_total", task=name, outcome="success") == successes + 1
    assert sample("cdp_celery_task_runs_total", task=failing, outcome="failure") == failures + 1
    assert sample("cdp_celery_task_duration_seconds_count", task=name) == timed + 1


def test_processing_lag_and_backpressure_are_gauges(client):
    metrics = scraped(client)
    assert metrics["cdp_processing_lag_seconds{}"] == 0
    assert metrics["cdp_processing_backpressure{}"] == 0


def test_the_grafana_dashboard_queries_only_metrics_that_metrics_exposes(client, source):
    pipeline.events_process_pending()  # its last run is a gauge from then on
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "cdp-dashboard.json").read_text())
    exposed = {
        family.name
        for family in text_string_to_metric_families(client.get("/metrics").content.decode())
    }
    # Families that have no sample until something is counted.
    exposed |= {family.name for collector in COLLECTORS for family in collector.describe()}
    queried = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            queried |= set(re.findall(r"\bcdp_[a-z_]+", target["expr"]))
    suffixes = ("_total", "_bucket", "_count", "_sum")
    missing = {
        name
        for name in queried
        if name not in exposed and not any(name.removesuffix(s) in exposed for s in suffixes)
    }
    assert len(dashboard["panels"]) >= 10 and not missing
