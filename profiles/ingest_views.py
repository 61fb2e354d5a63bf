"""Segment-compatible ingestion endpoints (/v1/...): plain Django views, thin and fast.

Not DRF: SDKs read errors as {"code", "message"} (a DRF {"detail"} made one SDK retry a 400
forever) and every microsecond per request counts here. The write key is the only credential
these routes accept: it comes as the HTTP Basic user name (with or without a colon), as
`writeKey` in the body, or as `?writeKey=`. Browsers call these routes cross-origin, so every
answer carries CORS headers and OPTIONS preflights are answered. The helpers that answer
SDKs (`sdk_response`, `sdk_error`, `header_write_key`, `preflight_or_refuse`, `body_read`) are
public: the decide route (experiences.decide_views) answers browsers the same way.
"""

import base64
import binascii
from typing import Any

import orjson
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from access.metrics import ingest_refusal_record
from profiles.ingestion import (
    IngestError,
    InvalidWriteKeyError,
    MalformedBodyError,
    PayloadTooLargeError,
    StorageUnavailableError,
    ingest_body_parse,
    ingest_messages,
    source_for_write_key_cached,
)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    "Access-Control-Allow-Headers": (
        "Authorization, Content-Type, Content-Encoding, X-Retry-Count, X-Requested-With"
    ),
    "Access-Control-Max-Age": "86400",
}
_SUCCESS = orjson.dumps({"success": True})


def sdk_response(body: bytes, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type="application/json")
    # The middleware that would set it does not run for /v1/ (ingest_middleware): without it
    # the server frames every answer as chunked.
    response["Content-Length"] = str(len(body))
    for name, value in CORS_HEADERS.items():
        response[name] = value
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def sdk_error(status: int, code: str, message: str, **headers: str) -> HttpResponse:
    return sdk_response(orjson.dumps({"code": code, "message": message}), status, **headers)


def _refusal(exc: IngestError) -> HttpResponse:
    ingest_refusal_record(code=exc.code)
    if isinstance(exc, StorageUnavailableError):
        return sdk_error(
            exc.status, exc.code, exc.message, Retry_After=str(exc.retry_after_seconds)
        )
    return sdk_error(exc.status, exc.code, exc.message)


def database_unavailable() -> HttpResponse:
    """A database outage outside the (retried) write, e.g. looking up the write key."""
    return _refusal(StorageUnavailableError("the database is unavailable; retry later"))


def header_write_key(request: HttpRequest) -> str:
    authorization = request.META.get("HTTP_AUTHORIZATION", "")
    if authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip()).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return ""
        return decoded.partition(":")[0]
    return ""


def body_read(request: HttpRequest) -> bytes:
    limit = settings.INGEST_MAX_REQUEST_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    # Even gzip never makes a body smaller than the wire: over the limit on the wire is too big.
    if declared > limit:
        raise PayloadTooLargeError(f"request body larger than {limit // 1024} KB")
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLargeError(f"request body larger than {limit // 1024} KB")
    return raw


def preflight_or_refuse(request: HttpRequest, allowed: str) -> HttpResponse | None:
    if request.method == "OPTIONS":
        response = sdk_response(b"", 204)
        del response["Content-Type"], response["Content-Length"]  # a 204 has no body
        return response
    if request.method not in allowed.split(", "):
        return sdk_error(
            405, "method_not_allowed", f"use {allowed} on this endpoint", Allow=allowed
        )
    return None


def _body_and_source(request: HttpRequest) -> tuple[Any, Any]:
    write_key = header_write_key(request) or request.GET.get("writeKey", "")
    if write_key:
        source = source_for_write_key_cached(write_key=write_key)
        if source is None:
            raise InvalidWriteKeyError("the write key is not a valid key of an enabled source")
    raw = body_read(request)
    body = ingest_body_parse(raw, content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""))
    if not write_key:
        body_key = body.get("writeKey") if isinstance(body, dict) else None
        if not isinstance(body_key, str) or not body_key:
            raise InvalidWriteKeyError(
                "a write key is required: HTTP Basic user name, writeKey in the body, or ?writeKey="
            )
        source = source_for_write_key_cached(write_key=body_key)
        if source is None:
            raise InvalidWriteKeyError("the write key is not a valid key of an enabled source")
    if not isinstance(body, dict):
        raise MalformedBodyError("body: must be a JSON object", code="invalid_request")
    return body, source


@csrf_exempt
def message_ingest(request: HttpRequest, message_type: str) -> HttpResponse:
    """POST /v1/{identify,track,page,screen,group,alias} and the browser's /v1/{i,t,p,s,g,a}:
    one message. Invalid: 400 and nothing stored."""
    refused = preflight_or_refuse(request, "POST")
    if refused:
        return refused
    try:
        body, source = _body_and_source(request)
        message = dict(body)
        message["type"] = message_type  # the route says what the message is
        # Measured on the message as sent, so an SDK can tell which message was too big.
        if _message_size(message) > settings.INGEST_MAX_MESSAGE_BYTES:
            raise PayloadTooLargeError(
                f"message larger than {settings.INGEST_MAX_MESSAGE_BYTES // 1024} KB",
                code="message_too_large",
            )
        ingest_messages(source=source, messages=[message], strict=True)
    except IngestError as exc:
        return _refusal(exc)
    except (OperationalError, InterfaceError):
        return database_unavailable()
    return sdk_response(_SUCCESS)


def _message_size(message: dict) -> int:
    try:
        return len(orjson.dumps(message))
    except (TypeError, orjson.JSONEncodeError):
        return 0


@csrf_exempt
def batch_ingest(request: HttpRequest) -> HttpResponse:
    """POST /v1/batch, /v1/import and the browser's /v1/b: {"batch": [...], "context",
    "integrations", "sentAt"}. Invalid messages are quarantined, the others stored."""
    refused = preflight_or_refuse(request, "POST")
    if refused:
        return refused
    try:
        body, source = _body_and_source(request)
        batch = body.get("batch")
        if not isinstance(batch, list):
            raise MalformedBodyError("batch: must be a list of messages", code="invalid_request")
        ingest_messages(
            source=source,
            messages=batch,
            context=body.get("context"),
            integrations=body.get("integrations"),
            sent_at=body.get("sentAt"),
        )
    except IngestError as exc:
        return _refusal(exc)
    except (OperationalError, InterfaceError):
        return database_unavailable()
    return sdk_response(_SUCCESS)


def _settings_body(request: HttpRequest, write_key: str) -> dict[str, Any]:
    """What analytics.js needs from its CDN to send to us (cf. Segment's project settings)."""
    return {
        "integrations": {
            "Segment.io": {
                "apiKey": write_key,
                "apiHost": f"{request.get_host()}/v1",
                "protocol": "https" if request.is_secure() else "http",
                "unbundledIntegrations": [],
                "addBundledMetadata": True,
            }
        },
        "plan": {
            "track": {"__default": {"enabled": True}},
            "identify": {"__default": {"enabled": True}},
            "group": {"__default": {"enabled": True}},
        },
        "enabledMiddleware": {},
        "metrics": {"sampleRate": 0},
        "legacyVideoPluginsEnabled": False,
        "remotePlugins": [],
    }


@csrf_exempt
def project_settings(request: HttpRequest, write_key: str) -> HttpResponse:
    """GET /v1/projects/{writeKey}/settings: the browser SDK's CDN settings, pointing at us."""
    refused = preflight_or_refuse(request, "GET, HEAD")
    if refused:
        return refused
    if source_for_write_key_cached(write_key=write_key) is None:
        return sdk_error(404, "not_found", "no enabled source has this write key")
    return sdk_response(
        orjson.dumps(_settings_body(request, write_key)), Cache_Control="public, max-age=60"
    )
