"""Input found by fuzzing that used to answer 500: nesting deeper than the serialiser allows,
numeric ids longer than their column, UTC offsets PostgreSQL refuses. Each is a clear 400 (or,
inside a batch, a quarantined item); and one bad row never fails its neighbours' requests."""

import base64
import json
from datetime import UTC, datetime

import pytest
from django.db import DataError, connection
from django.utils import timezone

from profiles.ingestion.batching import GroupCommit, _Waiting
from profiles.ingestion.messages import MAX_NESTING, message_prepare, nesting_exceeds
from profiles.ingestion.storage import events_insert_group
from profiles.models import Event, QuarantinedMessage

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode()}


def post(client, path, body):
    return client.generic(
        "POST", path, data=json.dumps(body).encode(), content_type="application/json", **AUTH
    )


def nested(levels: int, leaf=None, container=dict):
    value = leaf
    for _ in range(levels):
        value = {"a": value} if container is dict else [value]
    return value


def assert_refused(response, *fragments):
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_message"
    for fragment in fragments:
        assert fragment in body["message"]
    assert not Event.objects.exists()


# --- Nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("message_id", [None, "given-id"])
@pytest.mark.parametrize("field", ["properties", "context"])
def test_a_message_nested_too_deeply_is_a_400_naming_the_field(client, source, field, message_id):
    body = {"userId": "u1", "event": "E", field: nested(300)}
    if message_id:
        body["messageId"] = message_id
    response = post(client, "/v1/track", body)
    assert_refused(response, f"messages[0].{field}: nested too deeply")


def test_deeply_nested_traits_are_a_400(client, source):
    response = post(client, "/v1/identify", {"userId": "u1", "traits": nested(254)})
    assert_refused(response, "messages[0].traits: nested too deeply")


def test_nesting_up_to_the_limit_is_stored_and_one_level_more_refused(client, source):
    body = {"userId": "u1", "event": "E", "messageId": "m", "properties": nested(MAX_NESTING - 1)}
    assert post(client, "/v1/track", body).status_code == 200
    assert Event.objects.filter(message_id="m").exists()
    body = {**body, "messageId": "m2", "properties": nested(MAX_NESTING)}
    assert post(client, "/v1/track", body).status_code == 400


def test_a_too_deeply_nested_batch_item_is_quarantined_and_the_rest_stored(client, source):
    batch = [
        {"type": "track", "userId": "u1", "event": "Good", "messageId": "good"},
        {"type": "track", "userId": "u1", "event": "Deep", "properties": nested(300)},
    ]
    assert post(client, "/v1/batch", {"batch": batch}).status_code == 200
    assert list(Event.objects.values_list("message_id", flat=True)) == ["good"]
    quarantined = QuarantinedMessage.objects.get()
    assert quarantined.event == "Deep"
    assert quarantined.errors == [
        {"field": "properties", "message": f"nested too deeply (over {MAX_NESTING} levels)"}
    ]
    assert not nesting_exceeds(quarantined.message, MAX_NESTING)


@pytest.mark.parametrize("container", [list, dict])
def test_a_batch_item_nested_as_deep_as_json_parses_is_quarantined_cut(client, source, container):
    batch = [nested(900, container=container)]
    if container is dict:
        batch = [{"type": "track", "userId": "u1", "event": "E", "properties": batch[0]}]
    assert post(client, "/v1/batch", {"batch": batch}).status_code == 200
    quarantined = QuarantinedMessage.objects.get()
    assert not nesting_exceeds(quarantined.message, MAX_NESTING)
    assert "(nested too deeply: cut)" in json.dumps(quarantined.message)


# --- Numeric ids -------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["userId", "anonymousId", "messageId"])
def test_a_numeric_id_longer_than_255_digits_is_a_400_naming_the_field(client, source, field):
    body = {"userId": "u1", "event": "E", field: 1e300}
    response = post(client, "/v1/track", body)
    assert_refused(response, f"messages[0].{field}: longer than 255 characters")


@pytest.mark.parametrize("digits", [21, 40, 255, 256])
def test_a_numeric_id_too_large_to_keep_its_digits_is_a_400(client, source, digits):
    """Integers beyond 64 bits reach the ingestion as floats: stored, their digits would
    change ("1000...0" sent, "9999...8845" kept). Up to 64 bits they keep every digit."""
    response = post(client, "/v1/track", {"userId": 10 ** (digits - 1), "event": "E"})
    assert_refused(response, "messages[0].userId:")
    assert post(client, "/v1/track", {"userId": 10**18, "event": "E"}).status_code == 200
    assert Event.objects.get().user_id == str(10**18)


def test_a_numeric_id_longer_than_255_digits_in_a_batch_is_quarantined(client, source):
    batch = [{"type": "track", "userId": 1e300, "event": "E", "messageId": "long"}]
    assert post(client, "/v1/batch", {"batch": batch}).status_code == 200
    assert not Event.objects.exists()
    assert QuarantinedMessage.objects.get().errors[0]["field"] == "userId"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the group writer is PostgreSQL's")
def test_a_bad_row_in_a_grouped_single_event_write_fails_only_its_own_request(source):
    received_at = timezone.now()
    good, bad = (
        message_prepare(
            0,
            {"type": "track", "userId": "u1", "event": "E", "messageId": message_id},
            batch_context=None,
            batch_integrations=None,
            batch_sent_at=None,
            received_at=received_at,
        )
        for message_id in ("good", "bad")
    )
    bad.message_id = "x" * 300  # past varchar(255), as a validation gap would let through
    writer = GroupCommit(events_insert_group)
    waiting = [_Waiting((source, good, received_at)), _Waiting((source, bad, received_at))]
    writer._waiting, writer._writing = list(waiting), True
    writer._write()
    stored = Event.objects.get()
    assert stored.message_id == "good"
    assert waiting[0].error is None and waiting[0].result == [stored.pk]
    assert isinstance(waiting[1].error, DataError)
    assert not writer._writing


# --- Timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2020-01-01T00:00:00+16:00", datetime(2019, 12, 31, 8, 0, tzinfo=UTC)),
        ("2020-01-01T00:00:00-23:59", datetime(2020, 1, 1, 23, 59, tzinfo=UTC)),
        (
            "2020-01-01T00:00:00+05:30:45.123456",
            datetime(2019, 12, 31, 18, 29, 14, 876544, tzinfo=UTC),
        ),
    ],
)
@pytest.mark.parametrize("field", ["timestamp", "originalTimestamp"])
def test_any_valid_utc_offset_is_stored_as_its_utc_time(client, source, sent, utc, field):
    body = {"userId": "u1", "event": "E", "messageId": "m", field: sent, "sentAt": sent}
    assert post(client, "/v1/track", body).status_code == 200, "stored"
    event = Event.objects.get()
    assert event.original_timestamp == utc
    assert event.sent_at == utc


def test_a_batch_sent_at_with_a_large_offset_is_stored(client, source):
    batch = [{"type": "track", "userId": "u1", "event": "E", "messageId": "m"}]
    body = {"batch": batch, "sentAt": "2020-01-01T00:00:00-20:00"}
    assert post(client, "/v1/batch", body).status_code == 200
    assert Event.objects.get().sent_at == datetime(2020, 1, 1, 20, 0, tzinfo=UTC)
    assert not QuarantinedMessage.objects.exists()


@pytest.mark.parametrize(
    "sent", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+23:59"]
)
def test_an_offset_that_overflows_the_calendar_is_a_400(client, source, sent):
    response = post(client, "/v1/track", {"userId": "u1", "event": "E", "timestamp": sent})
    assert_refused(response, "messages[0].timestamp: out of range")
