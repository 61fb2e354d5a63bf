"""Replaying captured SDK requests against the test client (shared by the ingestion tests)."""

import base64
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import time_machine

CAPTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sdk-captures"
CAPTURE_FILES = sorted(
    path.name
    for path in CAPTURES.glob("*.json")
    if path.name
    not in {"index.json", "analytics_js_cdn_settings.json", "standard_webhooks_v1.json"}
)
EXPLICIT_TRACK_TIMESTAMP = "2024-01-02T03:04:05.678000+00:00"


def load_capture(name: str) -> dict[str, Any]:
    return json.loads((CAPTURES / name).read_text())


def wire_bytes(request: dict[str, Any]) -> bytes:
    if request.get("raw_b64"):
        return base64.b64decode(request["raw_b64"])
    body = request["body"]
    return body.encode() if isinstance(body, str) else json.dumps(body).encode()


_META = {
    "authorization": "HTTP_AUTHORIZATION",
    "content-encoding": "HTTP_CONTENT_ENCODING",
    "x-retry-count": "HTTP_X_RETRY_COUNT",
    "user-agent": "HTTP_USER_AGENT",
    "origin": "HTTP_ORIGIN",
}


def replay(client, request: dict[str, Any], at: datetime | None = None):
    """Send one captured request as the SDK did: same method, path, query, bytes and headers,
    at the moment the capture received it (so its sentAt tells the SDK's real clock drift) or
    `at`, as if the SDK's clock were off ours by the difference."""
    headers = {key.lower(): value for key, value in request["headers"].items()}
    extra = {meta: headers[name] for name, meta in _META.items() if name in headers}
    path = request["path"] + (f"?{request['query']}" if request.get("query") else "")
    with time_machine.travel(at or datetime.fromisoformat(request["received_at"]), tick=True):
        return client.generic(
            request["method"],
            path,
            data=wire_bytes(request) if request["method"] == "POST" else b"",
            content_type=headers.get("content-type", ""),
            **extra,
        )


def captured_messages(capture: dict[str, Any]) -> list[tuple[dict, dict]]:
    """(message, its request's body) for every message the capture's POSTs carried, first
    sending only (a retry resends the same messageId, which is stored once, as first sent)."""
    found, seen = [], set()
    for request in capture["requests"]:
        body = request["body"]
        if request["method"] != "POST" or not isinstance(body, dict):
            continue
        for message in body.get("batch", [body]):
            if message["messageId"] not in seen:
                seen.add(message["messageId"])
                found.append((message, body))
    return found
