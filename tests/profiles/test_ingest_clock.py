"""Clock drift: a sender's clock off ours is corrected by sentAt on every route, an event is
never stored in the future, and historical times are kept."""

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from profiles.ingestion import ingest_messages
from profiles.ingestion.messages import CLOCK_CLAMPED_FLAG, event_time_choose
from profiles.models import Event

from .ingest_helpers import CAPTURE_FILES, captured_messages, load_capture, replay

TOLERANCE = timedelta(seconds=60)
AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode()}
RECEIVED = datetime(2026, 6, 1, 12, tzinfo=UTC)

times = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
offsets = st.timedeltas(min_value=timedelta(days=-3650), max_value=timedelta(days=3650))


def choose(timestamp=None, original=None, sent_at=None, received_at=RECEIVED):
    return event_time_choose(
        {"timestamp": timestamp, "originalTimestamp": original, "sentAt": sent_at},
        received_at=received_at,
        tolerance=TOLERANCE,
    )


@given(timestamp=times, sent_at=st.none() | times, received_at=times)
def test_no_event_time_is_ever_ahead_of_reception_beyond_the_tolerance(
    timestamp, sent_at, received_at
):
    event_time, original, clamped = choose(timestamp, None, sent_at, received_at)
    assert event_time <= received_at + TOLERANCE
    assert original == timestamp  # kept as sent, whatever happens to the event time
    if clamped:
        assert event_time == received_at
    elif sent_at is None:
        assert event_time == timestamp


@given(age=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)), lag=offsets)
def test_a_sender_whose_clock_is_off_keeps_the_time_between_its_event_and_its_send(age, lag):
    """The drift (sentAt against receivedAt) is taken out: the event happened `age` before it
    was sent, by the sender's clock, and so it did by ours."""
    sent_at = RECEIVED + lag
    event_time, _, clamped = choose(sent_at - age, None, sent_at)
    if abs(lag) > TOLERANCE:
        assert event_time == RECEIVED - age
    else:
        assert event_time == sent_at - age  # within the tolerance: taken as sent
    assert not clamped


@given(
    timestamp=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2026, 6, 1, 12), timezones=st.just(UTC)
    ),
    sent_lag=st.timedeltas(min_value=-TOLERANCE, max_value=TOLERANCE),
)
def test_a_historical_time_sent_by_a_clock_that_agrees_with_ours_is_kept(timestamp, sent_lag):
    for sent_at in (None, RECEIVED + sent_lag):
        assert choose(timestamp, None, sent_at) == (timestamp, timestamp, False)


@given(
    ahead=st.timedeltas(
        min_value=TOLERANCE + timedelta(microseconds=1), max_value=timedelta(days=3650)
    )
)
def test_a_future_time_without_sent_at_is_clamped_to_reception_and_flagged(ahead):
    assert choose(RECEIVED + ahead) == (RECEIVED, RECEIVED + ahead, True)


@given(ahead=st.timedeltas(min_value=timedelta(0), max_value=TOLERANCE))
def test_a_time_ahead_within_the_tolerance_is_kept(ahead):
    assert choose(RECEIVED + ahead) == (RECEIVED + ahead, RECEIVED + ahead, False)


def test_rudderstack_s_original_timestamp_is_the_sender_s_time():
    original = RECEIVED + timedelta(hours=2, seconds=-5)  # a device two hours fast
    event_time, kept, clamped = choose(None, original, RECEIVED + timedelta(hours=2))
    assert (event_time, kept, clamped) == (RECEIVED - timedelta(seconds=5), original, False)


def test_no_time_at_all_is_the_reception_time():
    assert choose() == (RECEIVED, None, False)


def post(client, path, body):
    return client.generic(
        "POST", path, data=json.dumps(body).encode(), content_type="text/plain", **AUTH
    )


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/v1/track", "/v1/t", "/v1/batch", "/v1/import", "/v1/b"])
def test_every_route_corrects_a_clock_one_hour_fast(client, source, path):
    now = datetime.now(UTC)
    message = {
        "type": "track",
        "userId": "u1",
        "event": "Clicked",
        "messageId": "m1",
        "timestamp": (now + timedelta(hours=1, seconds=-30)).isoformat(),
    }
    sent_at = (now + timedelta(hours=1)).isoformat()
    if path in ("/v1/batch", "/v1/import", "/v1/b"):
        body = {"batch": [message], "sentAt": sent_at}
    else:
        body = {**message, "sentAt": sent_at}
    assert post(client, path, body).status_code == 200
    event = Event.objects.get()
    assert event.timestamp == event.received_at - (event.sent_at - event.original_timestamp)
    assert event.timestamp < event.received_at
    assert event.original_timestamp.isoformat() == message["timestamp"]
    assert event.violations == []


@pytest.mark.django_db
def test_a_server_library_timestamp_in_the_future_without_sent_at_is_clamped_and_flagged(source):
    future = datetime.now(UTC) + timedelta(days=2)
    ingest_messages(
        source=source,
        messages=[{"type": "track", "userId": "u1", "event": "E", "timestamp": future}],
    )
    event = Event.objects.get()
    assert event.timestamp == event.received_at
    assert event.original_timestamp == future
    assert event.violations == [CLOCK_CLAMPED_FLAG]


@pytest.mark.django_db
def test_a_historical_import_keeps_its_time(client, source):
    body = {
        "batch": [
            {"type": "track", "userId": "u1", "event": "E", "timestamp": "2019-03-04T05:06:07Z"}
        ],
        "sentAt": datetime.now(UTC).isoformat(),
    }
    assert post(client, "/v1/import", body).status_code == 200
    assert Event.objects.get().timestamp == datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.django_db
@pytest.mark.parametrize("name", CAPTURE_FILES)
def test_every_sdk_s_messages_are_corrected_when_its_clock_is_three_hours_slow(
    client, source, name
):
    capture = load_capture(name)
    for request in capture["requests"]:
        at = datetime.fromisoformat(request["received_at"]) + timedelta(hours=3)
        replay(client, request, at=at)
    for message, _ in captured_messages(capture):
        stored = Event.objects.get(source=source, message_id=message["messageId"])
        sender_time = datetime.fromisoformat(
            (message.get("timestamp") or message["originalTimestamp"]).replace("Z", "+00:00")
        )
        assert stored.timestamp == stored.received_at - (stored.sent_at - sender_time)
        assert stored.timestamp <= stored.received_at
