"""Request metrics for every route Django's handler serves (the web nodes' ingestion front
records its own: profiles.ingest_middleware.IngestApplication)."""

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from access.metrics import http_request_record
from profiles.ingest_urls import INGEST_ROUTES


def request_route(request: HttpRequest) -> str:
    """The route's pattern (never the path: ids would make a series each), or "unmatched"."""
    if request.path_info in INGEST_ROUTES:
        return request.path_info.rstrip("/")
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None else "unmatched"


class RequestMetricsMiddleware:
    """First in MIDDLEWARE, so that it times everything below it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        began = time.perf_counter()
        response = self.get_response(request)
        http_request_record(
            route=request_route(request),
            method=request.method or "",
            status=response.status_code,
            seconds=time.perf_counter() - began,
        )
        return response
