"""Operational endpoints and the dashboard."""

import hmac
import os
import sys
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from access.roles import ADMIN, COMPLIANCE, MARKETER, roles_required
from cdp import metrics as cdp_metrics


@roles_required(MARKETER, COMPLIANCE, ADMIN)
def dashboard(request: HttpRequest) -> HttpResponse:
    """Ingestion at a glance. htmx re-requests the figures partial every few seconds."""
    raw_hours = request.GET.get("hours", str(cdp_metrics.DASHBOARD_DEFAULT_HOURS))
    allowed = cdp_metrics.DASHBOARD_WINDOWS_HOURS
    if not raw_hours.isdigit() or int(raw_hours) not in allowed:
        return HttpResponseBadRequest(
            f"hours: must be one of {', '.join(map(str, allowed))}", content_type="text/plain"
        )
    context = cdp_metrics.dashboard_figures(hours=int(raw_hours))
    context["quarantine_url"] = _path_if_routed("/data/quarantine/")
    partial = request.headers.get("HX-Request") == "true"
    return render(
        request, "cdp/dashboard.html#figures" if partial else "cdp/dashboard.html", context
    )


def _path_if_routed(path: str) -> str:
    """The path when some view serves it (areas land independently), else ""."""
    try:
        resolve(path)
    except Resolver404:
        return ""
    return path


# The sweep runs every minute under beat; a few missed runs mean beat is not running.
SWEEP_STALE_AFTER = timedelta(minutes=5)


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Public (no roles): load balancers call it. Says nothing but up/down per component."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # any failure means down; the reason goes to the log, not the caller
        checks["database"] = "down"
    if settings.REDIS_URL:
        from cdp.celery import app

        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            checks["broker"] = "ok"
            replies = app.control.ping(timeout=0.5)
            checks["workers"] = f"{len(replies)} up" if replies else "none"
        except Exception:
            checks["broker"] = "down"
    else:
        checks["broker"] = "inline"
    healthy = checks["database"] == "ok" and checks["broker"] != "down"
    body: dict[str, object] = {"status": "ok" if healthy else "down", **checks}
    if checks["database"] == "ok":
        body.update(_processing_checks())
    return JsonResponse(body, status=200 if healthy else 503)


def _processing_checks() -> dict[str, object]:
    """Whether processing keeps up. Not a reason to take a node out of the balancer (ingestion
    accepts while behind), but what an operator must see: a backlog over the threshold, and a
    sweep that has not run lately (no beat: work lost with a worker or the broker would wait
    forever)."""
    backlog = cdp_metrics.processing_backlog()
    last_sweep = backlog.last_sweep_at
    stale = last_sweep is None or timezone.now() - last_sweep > SWEEP_STALE_AFTER
    return {
        "backlog": "over threshold" if backlog.over_threshold else "ok",
        "pending_events": backlog.pending,
        "processing_lag_seconds": round(backlog.lag_seconds, 1),
        "last_sweep_at": last_sweep.isoformat() if last_sweep else None,
        "sweep": "not running (is celery beat running?)" if stale else "ok",
    }


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With METRICS_TOKEN set, the scraper must send it as Bearer."""
    token = os.environ.get("METRICS_TOKEN", "")
    if token:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent, token):
            return HttpResponse("metrics token required\n", status=401)
    body, content_type = cdp_metrics.prometheus_exposition()
    return HttpResponse(body, content_type=content_type)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500. A database outage answers 503 `{"code", "message"}` with Retry-After, which
    SDKs, API clients and load balancers retry; any other error Django's 500 page."""
    if isinstance(sys.exc_info()[1], OperationalError | InterfaceError):
        response = JsonResponse(
            {"code": "database_unavailable", "message": "the database is unavailable; retry later"},
            status=503,
        )
        response["Retry-After"] = "5"
        return response
    return defaults.server_error(request)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """404s: JSON on the APIs (a path that matches no route, e.g. `/api/v1/profiles/abc/`,
    answers as an unknown id does), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    if request.path.startswith("/v1/"):
        return JsonResponse({"code": "not_found", "message": "no such endpoint"}, status=404)
    return defaults.page_not_found(request, exception)
