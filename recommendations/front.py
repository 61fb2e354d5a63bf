"""Recommendation lists, by profile id and by a visitor's identifier, answered by the web
nodes' WSGI front (cdp/wsgi.py, profiles.ingest_middleware.IngestApplication), past Django's
handler and DRF.

A shop's pages ask for a person's `home` list on every view, and most answers are cached.
Django's middleware stack, DRF's dispatch (negotiation, authenticator and permission objects,
the renderer) and the serializer for the parameters were ~60% of the CPU of a cached answer.
Here a cached answer costs the API key's read, one query (the profile's survivor and consent,
by id or by the visitor's identifier) and two cache round trips (the list, then the key's rate
counter); a list not cached yet is built and cached by the same serving code the API views
call.

The front answers only what it answers exactly as the API views would: a GET asking for JSON
with a valid `recommendations:read` key, valid parameters, an existing profile and room under
the key's rate. Everything else (a session, a bad key or parameter, an unknown profile, a
request over the rate, HTML asked for) is declined and Django's handler answers it, so the
errors keep their one source.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from rest_framework.exceptions import APIException

from access.auth import ApiKeyAuthentication, ApiKeyRateThrottle
from profiles.ingest_middleware import Declined
from recommendations import serving
from recommendations.api import (
    IDENTIFIER_PARAMS,
    answer_output,
    recommendation_identifier,
    recommendation_request,
)

READ_SCOPE = "recommendations:read"
# Media types DRF answers with JSON (its browsable API answers text/html).
JSON_ACCEPTED = frozenset({"", "*/*", "application/json", "application/*"})


def profile_recommendations(request: HttpRequest, profile_id: str) -> HttpResponse:
    """GET /api/v1/profiles/{id}/recommendations/, or `Declined` (see the module docstring)."""
    wanted = _admitted(request)
    answer = serving.recommendations_for_profile_id(profile_id=int(profile_id), request=wanted)
    if answer is None:
        raise Declined
    return _answered(answer)


def identifier_recommendations(request: HttpRequest) -> HttpResponse:
    """GET /api/v1/recommendations/?user_id= (or anonymous_id=), or `Declined`: the route a
    shop's front end asks on every page view."""
    try:
        kind, value = recommendation_identifier(request.GET)
    except APIException:
        raise Declined from None
    wanted = _admitted(request, extra=IDENTIFIER_PARAMS)
    return _answered(serving.recommendations_for_identifier(kind=kind, value=value, request=wanted))


def _admitted(request: HttpRequest, extra: frozenset[str] = frozenset()) -> serving.Request:
    """The list asked for, once the request is one the front answers and is counted against
    the key's rate; else `Declined`. Nothing is declined after the count but an unknown
    profile, which the API view counts again as it answers its 404."""
    if request.method != "GET" or "format" in request.GET or not _json_accepted(request):
        raise Declined
    try:
        authenticated = ApiKeyAuthentication().authenticate(request)  # type: ignore[arg-type]
        if authenticated is None or not authenticated[1].has_scope(READ_SCOPE):
            raise Declined
        wanted = recommendation_request(request.GET, extra=extra)
    except APIException:
        raise Declined from None
    caller: Any = SimpleNamespace(auth=authenticated[1], user=authenticated[0])
    if not ApiKeyRateThrottle().allow_request(caller, None):
        raise Declined
    return wanted


def _answered(answer: serving.Answer) -> HttpResponse:
    return HttpResponse(
        orjson.dumps(answer_output(answer)),
        content_type="application/json",
        # What DRF's APIView adds to its answers.
        headers={"Vary": "Accept", "Allow": "GET, HEAD, OPTIONS"},
    )


def _json_accepted(request: HttpRequest) -> bool:
    accepted = request.META.get("HTTP_ACCEPT", "")
    return all(part.split(";")[0].strip() in JSON_ACCEPTED for part in accepted.split(","))


RECOMMENDATION_ROUTES = [
    (
        re.compile(r"/api/v1/profiles/(?P<profile_id>[0-9]{1,18})/recommendations/"),
        profile_recommendations,
        "/api/v1/profiles/<int:profile_id>/recommendations/",
    ),
    (
        re.compile(r"/api/v1/recommendations/"),
        identifier_recommendations,
        "/api/v1/recommendations/",
    ),
]
