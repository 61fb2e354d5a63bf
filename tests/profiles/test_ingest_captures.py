"""Every request that real Segment and RudderStack SDKs sent (tests/fixtures/sdk-captures) is
accepted and stored as its SDK meant it."""

from datetime import datetime

import pytest

from profiles.models import Event, QuarantinedMessage

from .ingest_helpers import (
    CAPTURE_FILES,
    EXPLICIT_TRACK_TIMESTAMP,
    captured_messages,
    load_capture,
    replay,
)

pytestmark = pytest.mark.django_db


def _as_accepted(message: dict, body: dict) -> dict:
    """The message as ingestion should keep it: batch sentAt merged in, write key removed."""
    accepted = {key: value for key, value in message.items() if key != "writeKey"}
    if body.get("sentAt") and not accepted.get("sentAt"):
        accepted["sentAt"] = body["sentAt"]
    return accepted


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_every_captured_request_is_accepted_with_success_true(client, source, name):
    for request in load_capture(name)["requests"]:
        response = replay(client, request)
        assert response.status_code == 200, (request["path"], response.content)
        if request["method"] == "POST":
            assert response.json() == {"success": True}
    assert not QuarantinedMessage.objects.exists()


@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_every_captured_message_is_stored_once_as_its_sdk_meant_it(client, source, name):
    capture = load_capture(name)
    for request in capture["requests"]:
        replay(client, request)
    messages = captured_messages(capture)
    message_ids = {message["messageId"] for message, _ in messages}
    # Retried requests (X-Retry-Count, same messageId) are stored once.
    assert Event.objects.filter(source=source).count() == len(message_ids)
    for message, body in messages:
        stored = Event.objects.get(source=source, message_id=message["messageId"])
        assert stored.type == message["type"]
        assert stored.user_id == (message.get("userId") or "")
        assert stored.anonymous_id == (message.get("anonymousId") or "")
        assert stored.received_at is not None
        assert "writeKey" not in stored.payload
        assert stored.message == _as_accepted(message, body)
        if message["type"] == "track":
            assert stored.event == message["event"]
            assert stored.properties == message["properties"]
        if message["type"] in ("page", "screen"):
            assert stored.event == message["name"]
        if message["type"] == "identify":
            # Top level, context.traits only (rudder-sdk-python), or both: the traits are there.
            assert stored.traits["email"] == "jane@example.com"
        if message["type"] == "alias":
            assert stored.payload["previousId"] == message["previousId"]
        if message["type"] == "group":
            assert stored.payload["groupId"] == message["groupId"]
            assert stored.traits == message["traits"]
        assert not stored.is_bot


@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_captured_timestamps_are_kept_as_sent_by_clocks_that_agree_with_ours(client, source, name):
    capture = load_capture(name)
    for request in capture["requests"]:
        replay(client, request)
    for message, body in captured_messages(capture):
        stored = Event.objects.get(source=source, message_id=message["messageId"])
        sent_at = message.get("sentAt") or body.get("sentAt")
        assert stored.sent_at == (_iso(sent_at.replace("Z", "+00:00")) if sent_at else None)
        original = message.get("originalTimestamp") or message["timestamp"]
        assert stored.original_timestamp == _iso(original.replace("Z", "+00:00"))
        if str(message.get("timestamp")).startswith("2024-01-02T03:04:05.678"):
            # The explicit timestamp the test app set: a historical time, kept exactly.
            assert stored.timestamp.isoformat() == EXPLICIT_TRACK_TIMESTAMP
        else:
            # Replayed when captured: no SDK's clock was off ours, so its time is kept.
            assert stored.timestamp == _iso(
                (message.get("timestamp") or original).replace("Z", "+00:00")
            )


def test_the_explicit_track_timestamp_lands_exactly_from_every_server_sdk(client, source):
    for name in CAPTURE_FILES:
        for request in load_capture(name)["requests"]:
            replay(client, request)
    orders = Event.objects.filter(event="Order Completed").exclude(
        context__library__name="analytics.js"  # a browser cannot set a timestamp
    )
    assert orders.count() >= 10
    assert {event.timestamp.isoformat() for event in orders} == {EXPLICIT_TRACK_TIMESTAMP}


def test_cdn_settings_point_the_browser_sdk_at_this_server(client, source):
    response = client.get("/v1/projects/WRITE_KEY_test123/settings")
    assert response.status_code == 200
    segment = response.json()["integrations"]["Segment.io"]
    assert segment["apiKey"] == "WRITE_KEY_test123"
    assert segment["apiHost"] == "testserver/v1"
    assert segment["protocol"] == "http"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert set(response.json()) >= set(load_capture("analytics_js_cdn_settings.json"))


def test_cdn_settings_of_an_unknown_write_key_are_a_json_404(client, source):
    response = client.get("/v1/projects/nope/settings")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
