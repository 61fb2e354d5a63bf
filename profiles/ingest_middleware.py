"""Ingestion routes served past the rest of the middleware stack.

The /v1/ routes are the busiest by far (every page view and click of every site and app) and
use none of what the middleware below this one provides: no session, user, CSRF token (they are
csrf_exempt), messages, allauth state, frame options for a JSON answer, static files or profile
audit. Running that stack cost about as much CPU as the rest of a single-event request outside
the database, so this middleware, placed right after SecurityMiddleware (HTTPS redirect and
security headers still apply), calls the ingestion view itself. Middleware listed after it does
not run for /v1/.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import resolve

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
