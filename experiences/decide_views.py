"""`/v1/decide`: what a website or app shows a visitor in its placements. A plain Django view
answered as the ingestion routes answer SDKs (profiles.ingest_views): authorised by a source's
write key (HTTP Basic user name, `?writeKey=`, or `writeKey` in a POST body), CORS on every
answer, errors as {"code", "message"} naming the parameter at fault. Served past the session,
CSRF and auth middleware, like every /v1/ route (profiles.ingest_middleware).

GET  /v1/decide?placement=home_hero&anonymousId=...   -> one answer
GET  /v1/decide?placements=home_hero,cart_banner&userId=...  -> {"decisions": [...]}
POST /v1/decide {"placements": [...], "anonymousId"|"userId", "page": {...}} -> {"decisions"}

Page context: `path`, `referrer`, `utm_campaign`, `device`, `country` (query parameters, or
`page` in a POST body).
"""

from __future__ import annotations

from typing import Any

import orjson
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from experiences.definition import MAX_PAGE_VALUE, PAGE_FIELDS
from experiences.services import UnknownPlacement, decisions_take
from profiles.identifiers import (
    ANONYMOUS_ID,
    USER_ID,
    InvalidIdentifierError,
    identifier_normalize,
)
from profiles.ingest_views import (
    body_read,
    database_unavailable,
    header_write_key,
    preflight_or_refuse,
    sdk_error,
    sdk_response,
)
from profiles.ingestion import IngestError, ingest_body_parse, source_for_write_key_cached

MAX_PLACEMENTS = 20
_IDENTIFIERS = {"anonymousId": ANONYMOUS_ID, "userId": USER_ID}
_QUERY_PARAMETERS = {"placement", "placements", "writeKey", *_IDENTIFIERS, *PAGE_FIELDS}
_BODY_KEYS = {"placements", "writeKey", "page", *_IDENTIFIERS}


class BadInput(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.message = f"{field}: {message}"


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or "\x00" in value or len(value) > limit:
        raise BadInput(field, f"must be text of at most {limit} characters, without NUL")
    return value


def _placements(value: Any, field: str) -> list[str]:
    keys = value.split(",") if isinstance(value, str) else value
    if not isinstance(keys, list) or not keys or len(keys) > MAX_PLACEMENTS:
        raise BadInput(field, f"give 1 to {MAX_PLACEMENTS} placement keys")
    return [_text(key, field, 64).strip() for key in keys]


def _body(request: HttpRequest) -> Any:
    """A POST's JSON body (None for a GET)."""
    if request.method != "POST":
        return None
    return ingest_body_parse(
        body_read(request), content_encoding=request.META.get("HTTP_CONTENT_ENCODING", "")
    )


def _write_key(request: HttpRequest, body: Any) -> str:
    """The write key wherever the caller put it: HTTP Basic, the body, or the query."""
    given = header_write_key(request)
    if not given and isinstance(body, dict):
        given = body.get("writeKey")
    if not given and body is None:
        given = request.GET.get("writeKey")
    return str(given or "")


def _request_read(
    request: HttpRequest, body: Any
) -> tuple[list[str], dict[str, Any], dict[str, str]]:
    """(placement keys, identifiers given, page) from the query or the body."""
    if body is not None:
        if not isinstance(body, dict):
            raise BadInput("body", "must be a JSON object")
        unknown = sorted(set(body) - _BODY_KEYS)
        if unknown:
            raise BadInput(unknown[0], f"unknown key; use {', '.join(sorted(_BODY_KEYS))}")
        page = body.get("page", {})
        if not isinstance(page, dict):
            raise BadInput("page", "must be an object")
        page_unknown = sorted(set(page) - set(PAGE_FIELDS))
        if page_unknown:
            raise BadInput(f"page.{page_unknown[0]}", f"use {', '.join(PAGE_FIELDS)}")
        placements = _placements(body.get("placements"), "placements")
        given = {name: body[name] for name in _IDENTIFIERS if body.get(name) not in (None, "")}
        page_given = {f"page.{k}": v for k, v in page.items()}
    else:
        params = request.GET
        unknown = sorted(set(params) - _QUERY_PARAMETERS)
        if unknown:
            raise BadInput(
                unknown[0], f"unknown parameter; use {', '.join(sorted(_QUERY_PARAMETERS))}"
            )
        if ("placement" in params) == ("placements" in params):
            raise BadInput("placement", "give placement (one key) or placements (a list)")
        name = "placement" if "placement" in params else "placements"
        placements = _placements(params[name] if name == "placements" else [params[name]], name)
        given = {name: params[name] for name in _IDENTIFIERS if params.get(name)}
        page_given = {k: params[k] for k in PAGE_FIELDS if k in params}
    page = {
        label.removeprefix("page."): _text(value, label, MAX_PAGE_VALUE)
        for label, value in page_given.items()
    }
    if len(given) != 1:
        raise BadInput("anonymousId", "give exactly one of anonymousId or userId")
    return placements, given, page


@csrf_exempt
def decide(request: HttpRequest) -> HttpResponse:
    refused = preflight_or_refuse(request, "GET, POST")
    if refused:
        return refused
    try:
        # The key first: a caller without one learns that before anything about its input.
        body = _body(request)
        write_key = _write_key(request, body)
        if not write_key:
            return sdk_error(
                401,
                "invalid_write_key",
                "a write key is required: HTTP Basic user name, writeKey in the body, "
                "or ?writeKey=",
            )
        if source_for_write_key_cached(write_key=write_key) is None:
            return sdk_error(
                401, "invalid_write_key", "the write key is not a valid key of an enabled source"
            )
        placements, given, page = _request_read(request, body)
        ((name, value),) = given.items()
        try:
            visitor = (_IDENTIFIERS[name], identifier_normalize(_IDENTIFIERS[name], value))
        except InvalidIdentifierError as exc:
            raise BadInput(name, str(exc)) from None
        answers = decisions_take(placement_keys=placements, identifier=visitor, page=page)
    except BadInput as exc:
        return sdk_error(400, "invalid_request", exc.message)
    except UnknownPlacement as exc:
        return sdk_error(404, "unknown_placement", f"placement: {exc}")
    except IngestError as exc:
        return sdk_error(exc.status, exc.code, exc.message)
    except (OperationalError, InterfaceError):
        return database_unavailable()
    single = request.method == "GET" and "placement" in request.GET
    answered = answers[0].as_dict() if single else {"decisions": [a.as_dict() for a in answers]}
    # Decisions are per person and change with their segments: never from a shared cache.
    return sdk_response(orjson.dumps(answered), Cache_Control="private, no-store")
