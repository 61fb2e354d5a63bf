"""Bad input gets its clear error, {"code", "message"}, and nothing from a refused request is
stored; invalid messages inside a batch are quarantined with the reason."""

import base64
import gzip
import json

import pytest

from profiles.models import Event, QuarantinedMessage

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode()}


def post(client, path, body, content_type="application/json", **extra):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.generic("POST", path, data=data, content_type=content_type, **{**AUTH, **extra})


def assert_refused(response, status, code, *fragments):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    for fragment in fragments:
        assert fragment in body["message"]
    assert not Event.objects.exists()
    assert not QuarantinedMessage.objects.exists()


def test_malformed_json_is_a_400_that_says_line_and_column(client, source):
    response = post(client, "/v1/track", b'{"userId": "u1",\n "event": tru}')
    assert_refused(response, 400, "malformed_json", "line 2, column")


def test_a_track_without_event_names_the_message_and_the_field(client, source):
    response = post(client, "/v1/track", {"userId": "u1"})
    assert_refused(response, 400, "invalid_message", "messages[0].event: required for track")


def test_neither_user_id_nor_anonymous_id_is_refused(client, source):
    response = post(client, "/v1/identify", {"traits": {"email": "a@example.com"}})
    assert_refused(response, 400, "invalid_message", "userId or anonymousId")


def test_null_ids_count_as_missing(client, source):
    response = post(client, "/v1/page", {"userId": None, "anonymousId": None})
    assert_refused(response, 400, "invalid_message", "userId or anonymousId")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"userId": "u1", "event": 42}, "messages[0].event: must be string, not number"),
        ({"userId": "u1", "event": "X", "properties": []}, "messages[0].properties: must be"),
        ({"userId": ["u1"], "event": "X"}, "messages[0].userId: must be"),
        ({"userId": "u1", "event": "X", "context": "web"}, "messages[0].context: must be"),
        ({"userId": "u1", "event": "X", "timestamp": "yesterday-ish"}, "timestamp: not a date"),
        ({"userId": "u1", "event": "X", "timestamp": True}, "messages[0].timestamp: must be"),
    ],
)
def test_wrong_types_are_refused_with_the_field_named(client, source, body, fragment):
    assert_refused(post(client, "/v1/track", body), 400, "invalid_message", fragment)


def test_an_alias_needs_previous_id_and_user_id(client, source):
    response = post(client, "/v1/alias", {"userId": "u1"})
    assert_refused(response, 400, "invalid_message", "messages[0].previousId: required for alias")


def test_a_body_that_is_not_an_object_is_refused(client, source):
    assert_refused(post(client, "/v1/track", [1, 2]), 400, "invalid_request", "JSON object")


def test_a_batch_that_is_not_a_list_is_refused(client, source):
    response = post(client, "/v1/batch", {"batch": {"type": "track"}})
    assert_refused(response, 400, "invalid_request", "batch: must be a list")


def test_an_oversized_request_is_a_413(client, source):
    batch = [
        {"type": "track", "userId": f"u{i}", "event": "X", "properties": {"pad": "x" * 20_000}}
        for i in range(30)
    ]
    assert_refused(post(client, "/v1/batch", {"batch": batch}), 413, "request_too_large")


def test_an_oversized_request_is_a_413_even_when_gzip_makes_it_small_on_the_wire(client, source):
    batch = [{"type": "track", "userId": "u", "event": "X", "properties": {"p": "a" * 600_000}}]
    wire = gzip.compress(json.dumps({"batch": batch}).encode())
    assert len(wire) < 10_000
    response = post(client, "/v1/batch", wire, HTTP_CONTENT_ENCODING="gzip")
    assert_refused(response, 413, "request_too_large", "decompressed")


def test_a_single_message_over_32_kb_is_a_413(client, source):
    body = {"userId": "u1", "event": "X", "properties": {"pad": "x" * 33_000}}
    assert_refused(post(client, "/v1/track", body), 413, "message_too_large", "32 KB")


def test_a_message_over_32_kb_inside_a_batch_is_quarantined_and_the_rest_stored(client, source):
    batch = [
        {"type": "track", "userId": "u1", "event": "Small", "messageId": "ok-1"},
        {"type": "track", "userId": "u1", "event": "Big", "properties": {"pad": "x" * 33_000}},
    ]
    response = post(client, "/v1/batch", {"batch": batch})
    assert response.status_code == 200
    assert list(Event.objects.values_list("message_id", flat=True)) == ["ok-1"]
    quarantined = QuarantinedMessage.objects.get()
    assert quarantined.reason == "message too large"
    assert quarantined.event == "Big"


@pytest.mark.parametrize(
    "extra",
    [
        {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"wrong-key:").decode()},
        {"HTTP_AUTHORIZATION": "Basic !!!not-base64"},
        {"HTTP_AUTHORIZATION": ""},
    ],
)
def test_a_bad_or_missing_write_key_is_a_401(client, source, extra):
    response = post(client, "/v1/track", {"userId": "u1", "event": "X"}, **extra)
    assert_refused(response, 401, "invalid_write_key")


def test_a_write_key_from_the_body_or_the_query_string_is_accepted(client, source):
    body = {"userId": "u1", "event": "X", "writeKey": "WRITE_KEY_test123", "messageId": "m1"}
    assert post(client, "/v1/track", body, HTTP_AUTHORIZATION="").status_code == 200
    query = {"userId": "u1", "event": "X", "messageId": "m2"}
    url = "/v1/track?writeKey=WRITE_KEY_test123"
    assert post(client, url, query, HTTP_AUTHORIZATION="").status_code == 200
    no_colon = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"WRITE_KEY_test123").decode()}
    assert post(client, "/v1/track", {**query, "messageId": "m3"}, **no_colon).status_code == 200
    assert Event.objects.count() == 3
    assert "writeKey" not in Event.objects.get(message_id="m1").payload


def test_a_disabled_source_cannot_ingest(client, source):
    source.enabled = False
    source.save()
    assert_refused(
        post(client, "/v1/track", {"userId": "u", "event": "X"}), 401, "invalid_write_key"
    )


def test_invalid_messages_in_a_batch_are_quarantined_with_their_reason(client, source):
    batch = [
        {"type": "track", "userId": "u1", "event": "Good", "messageId": "good"},
        {"type": "track", "userId": "u1", "messageId": "no-event"},
        {"type": "identify", "traits": {"email": "x@example.com"}, "messageId": "no-ids"},
        "not a message",
        {"type": "explode", "userId": "u1"},
    ]
    response = post(client, "/v1/batch", {"batch": batch})
    assert response.status_code == 200
    assert response.json() == {"success": True}
    assert list(Event.objects.values_list("message_id", flat=True)) == ["good"]
    quarantined = {q.message_id or q.reason: q for q in QuarantinedMessage.objects.all()}
    assert quarantined["no-event"].errors == [{"field": "event", "message": "required for track"}]
    assert "userId or anonymousId" in quarantined["no-ids"].errors[0]["field"]
    assert quarantined["not a JSON object"].message == "not a message"
    assert QuarantinedMessage.objects.count() == 4


def test_get_on_an_ingestion_route_is_a_405_and_options_a_cors_preflight(client, source):
    response = client.get("/v1/track")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    preflight = client.options("/v1/t", HTTP_ORIGIN="https://shop.example.com")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]


def test_truncated_gzip_is_a_400(client, source):
    wire = gzip.compress(json.dumps({"batch": []}).encode())[:-6]
    response = post(client, "/v1/batch", wire, HTTP_CONTENT_ENCODING="gzip")
    assert_refused(response, 400, "invalid_encoding", "gzip")


def test_a_null_message_in_a_batch_is_quarantined_as_json_null(client, source):
    response = post(client, "/v1/batch", {"batch": [None]})
    assert response.status_code == 200
    quarantined = QuarantinedMessage.objects.get()
    assert quarantined.message is None
    assert quarantined.errors[0]["message"] == "must be an object, not null"
