"""Ingestion routes served past the rest of Django's request handling.

The /v1/ routes are the busiest by far (every page view and click of every site and app) and
use none of what the middleware below this one provides: no session, user, CSRF token (they are
csrf_exempt), messages, allauth state, frame options for a JSON answer, static files or profile
audit. Running that stack cost about as much CPU as the rest of a single-event request outside
the database, so this middleware, placed right after SecurityMiddleware (HTTPS redirect and
security headers still apply), calls the ingestion view itself. Middleware listed after it does
not run for /v1/.

The web nodes go one step further (`IngestApplication`, their WSGI entry in cdp/wsgi.py): they
serve the ingestion routes in front of Django's handler. What the handler does per request
around this middleware (the request signals, the middleware chain's wrappers, URL resolving)
was ~80 of ~330 us of CPU per single-event request, measured in one process.
"""

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.urls import resolve

from access.metrics import http_request_record
from profiles.ingest_urls import INGEST_ROUTES

INGEST_PREFIX = "/v1/"


class IngestRoutesMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(INGEST_PREFIX):
            return self.get_response(request)
        # An unknown /v1/ path raises Resolver404, which Django turns into its 404 response.
        match = resolve(request.path_info)
        request.resolver_match = match
        return match.func(request, *match.args, **match.kwargs)


Routes = Mapping[str, tuple[Callable[..., Any], dict[str, Any]]]
# A path pattern, its view (the pattern's named groups are its arguments) and the route's name
# in the request metrics (as Django's handler names it: never the path, whose ids would make
# a series each).
PatternRoutes = Sequence[tuple[re.Pattern[str], Callable[..., Any], str]]
Route = tuple[Callable[..., Any], dict[str, Any], str]


class Declined(Exception):
    """Raised by a front route's view to leave the request to Django's handler (a front route
    may answer only some requests of its path: e.g. a cached list, not a miss)."""


class IngestApplication:
    """WSGI: the fixed ingestion routes (`INGEST_ROUTES`), the `more_routes` given (full
    path to (view, arguments), e.g. /v1/decide, from apps above this one) and the
    `pattern_routes` given (path pattern to view; e.g. cached recommendation lists) served
    here; every other path, /v1/projects/<key>/settings and unknown /v1/ paths included, and
    every request a view declines (`Declined`), by Django's handler.

    What those routes need of the handler is kept: SecurityMiddleware (HTTPS redirect,
    security headers); an exception answered as Django answers it (`response_for_exception`:
    logged, `got_request_exception` sent, 400 for a suspicious request, 500 otherwise); and the
    database connections closed when unusable or past CONN_MAX_AGE, which is what Django's
    request signals do for them.
    """

    def __init__(
        self,
        django_application: Callable[..., Iterable[bytes]],
        more_routes: Routes | None = None,
        pattern_routes: PatternRoutes = (),
    ) -> None:
        self.django_application = django_application
        self.more_routes = dict(more_routes or {})
        self.pattern_routes = tuple(pattern_routes)
        self.secured_view = SecurityMiddleware(self._view)

    def _route(self, path: str) -> Route | None:
        fixed = INGEST_ROUTES.get(path) or self.more_routes.get(path)
        if fixed is not None:
            return (*fixed, path.rstrip("/"))
        for pattern, view, name in self.pattern_routes:
            match = pattern.fullmatch(path)
            if match:
                return view, match.groupdict(), name
        return None

    def _view(self, request: HttpRequest) -> HttpResponse:
        view, kwargs, _ = request.front_route  # type: ignore[attr-defined]
        return view(request, **kwargs)

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        route = self._route(environ.get("PATH_INFO") or "")
        if route is None:
            return self.django_application(environ, start_response)
        began = time.perf_counter()
        request = WSGIRequest(environ)
        request.front_route = route  # type: ignore[attr-defined]
        # As Django's request_started does: with CONN_HEALTH_CHECKS, a kept connection that
        # died since the last request is replaced before this one uses it.
        close_old_connections()
        try:
            response = self.secured_view(request)
        except Declined:
            return self.django_application(environ, start_response)
        except Exception as exc:  # answered as Django's handler would
            response = response_for_exception(request, exc)
        finally:
            close_old_connections()
        http_request_record(
            route=route[2],
            method=request.method or "",
            status=response.status_code,
            seconds=time.perf_counter() - began,
        )
        start_response(
            f"{response.status_code} {response.reason_phrase}",
            [
                *response.items(),
                *(("Set-Cookie", c.output(header="")) for c in response.cookies.values()),
            ],
        )
        # The content, not the response: the server would call its close(), which sends
        # request_finished (whose work was done above).
        return [response.content]
