"""The ingestion service: deduplication, ids and traits as SDKs send them, bot flag, tracking
plans, ingest filters, and processing queued after commit."""

import base64
import json
from datetime import UTC, datetime

import pytest
from celery.signals import task_prerun

from access.models import Source
from access.services import source_create
from profiles.ingestion import (
    TrackingPlanInvalidError,
    ingest_messages,
    register_ingest_filter,
    tracking_plan_save,
    unregister_ingest_filter,
)
from profiles.models import DroppedMessageCount, Event, QuarantinedMessage, TrackingPlan

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode()}


def post(client, path, body, **extra):
    return client.generic(
        "POST", path, data=json.dumps(body).encode(), content_type="text/plain", **AUTH, **extra
    )


def track(**fields):
    return {"type": "track", "userId": "u1", "event": "Clicked", **fields}


def test_a_resent_message_id_is_stored_once(client, source):
    batch = {"batch": [track(messageId="m-1"), track(messageId="m-2")]}
    assert post(client, "/v1/batch", batch).status_code == 200
    assert post(client, "/v1/batch", batch, HTTP_X_RETRY_COUNT="1").status_code == 200
    assert Event.objects.count() == 2


def test_the_service_reports_duplicates_inside_and_across_requests(source):
    first = ingest_messages(source=source, messages=[track(messageId="a"), track(messageId="a")])
    again = ingest_messages(source=source, messages=[track(messageId="a"), track(messageId="b")])
    assert (first.accepted, first.duplicates) == (1, 1)
    assert (again.accepted, again.duplicates) == (1, 1)
    assert len(first.event_ids) == 1 and first.event_ids != again.event_ids


def test_the_same_message_id_from_two_sources_is_two_events(source):
    other = source_create(name="CRM").record
    ingest_messages(source=source, messages=[track(messageId="same")])
    ingest_messages(source=other, messages=[track(messageId="same")])
    assert Event.objects.filter(message_id="same").count() == 2


def test_a_retried_request_without_message_ids_is_still_deduplicated(client, source):
    body = {"batch": [track(timestamp="2024-05-01T10:00:00Z")], "sentAt": "2024-05-01T10:00:01Z"}
    post(client, "/v1/batch", body)
    body["sentAt"] = "2024-05-01T10:00:09Z"  # the retry is sent later
    post(client, "/v1/batch", body, HTTP_X_RETRY_COUNT="1")
    event = Event.objects.get()
    assert event.message_id.startswith("gen-")
    assert event.payload["messageId"] == event.message_id


def test_numeric_ids_are_accepted_and_stored_as_strings(source):
    ingest_messages(
        source=source,
        messages=[
            {"type": "identify", "userId": 42, "anonymousId": None, "messageId": 7},
            {"type": "alias", "userId": 43, "previousId": 42.0, "messageId": "al"},
            {"type": "group", "anonymousId": 9, "groupId": 1001, "messageId": "gr"},
        ],
    )
    identify = Event.objects.get(message_id="7")
    assert (identify.user_id, identify.anonymous_id) == ("42", "")
    assert identify.payload["userId"] == "42"
    assert Event.objects.get(message_id="al").payload["previousId"] == "42"
    assert Event.objects.get(message_id="gr").payload["groupId"] == "1001"


def test_identify_traits_only_in_context_are_the_events_traits(source):
    ingest_messages(
        source=source,
        messages=[
            {
                "type": "identify",
                "userId": "u1",
                "messageId": "i1",
                "traits": {"name": "Top"},
                "context": {"traits": {"email": "a@example.com", "name": "Context"}},
            }
        ],
    )
    assert Event.objects.get().traits == {"email": "a@example.com", "name": "Top"}


def test_batch_context_and_integrations_are_merged_into_each_message(client, source):
    body = {
        "batch": [track(messageId="m1", context={"locale": "fr-FR"})],
        "context": {"locale": "en-US", "library": {"name": "batcher"}},
        "integrations": {"All": False},
    }
    post(client, "/v1/import", body)
    event = Event.objects.get()
    assert event.context == {"locale": "fr-FR", "library": {"name": "batcher"}}
    assert event.payload["integrations"] == {"All": False}


def test_timestamps_are_parsed_leniently(source):
    formats = {
        "iso-z": "2024-03-04T05:06:07Z",
        "iso-offset": "2024-03-04T06:06:07+01:00",
        "naive": "2024-03-04 05:06:07",
        "rfc2822": "Mon, 04 Mar 2024 05:06:07 GMT",
        "epoch-s": 1709528767,
        "epoch-ms": 1709528767000,
    }
    ingest_messages(
        source=source,
        messages=[track(messageId=name, timestamp=value) for name, value in formats.items()],
    )
    expected = datetime(2024, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert {e.message_id: e.timestamp for e in Event.objects.all()} == dict.fromkeys(
        formats, expected
    )


def test_a_message_without_any_time_happens_when_it_is_received(source):
    received = datetime(2025, 6, 1, 12, tzinfo=UTC)
    ingest_messages(source=source, messages=[track(messageId="t")], received_at=received)
    event = Event.objects.get()
    assert event.timestamp == event.received_at == received
    assert event.original_timestamp is None


def test_bots_are_flagged_from_the_user_agent(source):
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    chrome = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    )
    ingest_messages(
        source=source,
        messages=[
            track(messageId="bot", context={"userAgent": googlebot}),
            track(messageId="human", context={"userAgent": chrome}),
        ],
    )
    assert Event.objects.get(message_id="bot").is_bot
    assert not Event.objects.get(message_id="human").is_bot


def test_nul_characters_are_replaced_not_a_database_error(client, source):
    response = post(client, "/v1/track", track(messageId="nul", properties={"a\u0000": "b\u0000"}))
    assert response.status_code == 200
    assert Event.objects.get().properties == {"a\ufffd": "b\ufffd"}


def test_the_source_last_event_time_is_recorded(client, source):
    post(client, "/v1/track", track())
    assert Source.objects.get(pk=source.pk).last_event_at is not None


# --- Tracking plans ---------------------------------------------------------------------------

ORDER_SCHEMA = {
    "type": "object",
    "properties": {"revenue": {"type": "number"}},
    "required": ["revenue"],
}


def test_a_quarantining_plan_quarantines_unknown_and_violating_events(client, source):
    tracking_plan_save(source=source, mode="quarantine", event_schemas={"Order": ORDER_SCHEMA})
    response = post(client, "/v1/track", track(event="Mystery", messageId="unknown"))
    assert response.status_code == 200
    assert not Event.objects.exists()
    quarantined = QuarantinedMessage.objects.get()
    assert quarantined.reason == "tracking plan: 'Mystery' is not in the tracking plan"
    assert quarantined.message_id == "unknown"

    post(client, "/v1/track", track(event="Order", messageId="bad", properties={"revenue": "x"}))
    bad = QuarantinedMessage.objects.get(message_id="bad")
    assert bad.errors[0]["field"] == "properties.revenue"
    post(client, "/v1/track", track(event="Order", messageId="good", properties={"revenue": 3}))
    assert list(Event.objects.values_list("message_id", flat=True)) == ["good"]


def test_a_flagging_plan_keeps_events_with_their_violations(source):
    tracking_plan_save(source=source, mode="flag", event_schemas={"Order": ORDER_SCHEMA})
    ingest_messages(
        source=source,
        messages=[
            track(event="Order", messageId="bad", properties={}),
            track(event="Other", messageId="unplanned"),
            track(event="Order", messageId="good", properties={"revenue": 1.5}),
            {"type": "page", "userId": "u1", "name": "Home", "messageId": "page"},
        ],
    )
    violations = {e.message_id: e.violations for e in Event.objects.all()}
    assert violations["bad"] == [
        {"field": "properties", "message": "'revenue' is a required property"}
    ]
    assert violations["unplanned"][0]["field"] == "event"
    assert violations["good"] == violations["page"] == []


def test_saving_a_plan_replaces_the_previous_one(source):
    tracking_plan_save(source=source, mode="quarantine", event_schemas={"Order": ORDER_SCHEMA})
    ingest_messages(source=source, messages=[track(event="New", messageId="1")])
    tracking_plan_save(source=source, mode="quarantine", event_schemas={"New": {}})
    ingest_messages(source=source, messages=[track(event="New", messageId="2")])
    assert TrackingPlan.objects.get().event_schemas == {"New": {}}
    assert list(Event.objects.values_list("message_id", flat=True)) == ["2"]


@pytest.mark.parametrize(
    ("mode", "schemas", "fragment"),
    [
        ("block", {}, "mode: must be one of flag, quarantine"),
        ("flag", {"Order": {"type": "numbr"}}, "event_schemas['Order']: not a valid JSON Schema"),
        ("flag", {"Order": {"required": "revenue"}}, "at required"),
        ("flag", {"Order": []}, "must be a JSON object"),
        ("flag", {"": {}}, "not a valid event name"),
        ("flag", ["Order"], "event_schemas: must be an object"),
    ],
)
def test_an_invalid_plan_is_refused_with_a_clear_message(source, mode, schemas, fragment):
    with pytest.raises(TrackingPlanInvalidError) as refused:
        tracking_plan_save(source=source, mode=mode, event_schemas=schemas)
    assert fragment in str(refused.value)
    assert isinstance(refused.value, ValueError)
    assert not TrackingPlan.objects.exists()


# --- Ingest filters ---------------------------------------------------------------------------


@pytest.fixture
def no_tracking_of_opted_out():
    def opted_out(source, message):
        consent = (message.get("context") or {}).get("consent") or {}
        if consent.get("categoryPreferences", {}).get("Analytics") is False:
            return "no consent for analytics"
        return None

    register_ingest_filter(opted_out)
    register_ingest_filter(opted_out)  # twice is once
    yield opted_out
    unregister_ingest_filter(opted_out)


def test_an_ingest_filter_drops_and_counts_messages(client, source, no_tracking_of_opted_out):
    no = {"consent": {"categoryPreferences": {"Analytics": False}}}
    batch = [
        track(messageId="kept"),
        track(messageId="dropped-1", context=no),
        track(messageId="dropped-2", context=no),
    ]
    assert post(client, "/v1/batch", {"batch": batch}).status_code == 200
    result = ingest_messages(source=source, messages=[track(messageId="dropped-3", context=no)])
    assert result.dropped == 1 and result.accepted == 0
    assert list(Event.objects.values_list("message_id", flat=True)) == ["kept"]
    assert not QuarantinedMessage.objects.exists()
    count = DroppedMessageCount.objects.get()
    assert (count.source, count.reason, count.count) == (source, "no consent for analytics", 3)


def test_without_filters_nothing_is_dropped(source):
    no = {"consent": {"categoryPreferences": {"Analytics": False}}}
    result = ingest_messages(source=source, messages=[track(messageId="m", context=no)])
    assert (result.accepted, result.dropped) == (1, 0)


# --- Processing after commit ---------------------------------------------------------------------


def test_accepted_events_are_queued_for_processing_after_commit_in_chunks(
    source, settings, django_capture_on_commit_callbacks
):
    settings.INGEST_PROCESS_CHUNK = 2
    chunks = []

    def record(sender=None, args=None, **kwargs):
        if sender.name == "cdp.tasks.events_process_task":
            chunks.append(list(args[0]))

    task_prerun.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = ingest_messages(
                source=source, messages=[track(messageId=str(i)) for i in range(5)]
            )
            assert chunks == []  # nothing runs before the commit
    finally:
        task_prerun.disconnect(record)
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]
    assert sorted(i for chunk in chunks for i in chunk) == sorted(result.event_ids)
    assert not Event.objects.filter(processed_at__isnull=True).exists()


def test_small_requests_are_queued_together_for_processing(settings):
    """With a real broker, ids of single-event requests are gathered and published as one task
    shortly after, instead of one task per event."""
    import time

    import redis
    from django.conf import settings as django_settings

    from cdp.celery import app as celery_app
    from profiles.ingestion.batching import events_enqueue

    if not django_settings.REDIS_URL:
        pytest.skip("needs the Redis broker (REDIS_URL)")
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    broker.delete("ingest")
    celery_app.conf.task_always_eager = False
    try:
        for event_id in (101, 102, 103):
            events_enqueue([event_id])
        deadline = time.monotonic() + 10
        while broker.llen("ingest") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # nothing else follows
        messages = [json.loads(raw) for raw in broker.lrange("ingest", 0, -1)]
    finally:
        celery_app.conf.task_always_eager = True
        broker.delete("ingest")
    assert len(messages) == 1
    assert messages[0]["headers"]["task"] == "cdp.tasks.events_process_task"
    args = json.loads(base64.b64decode(messages[0]["body"]))[0]
    assert args == [[101, 102, 103]]


def test_ids_are_published_in_full_chunks_and_the_rest_after_the_delay(settings):
    """Batches are gathered too: 300 + 300 ids with chunks of 500 are one task of 500 at once
    (before any delay) and one of 100 shortly after."""
    import time

    import redis
    from django.conf import settings as django_settings

    from cdp.celery import app as celery_app
    from profiles.ingestion.batching import events_enqueue

    if not django_settings.REDIS_URL:
        pytest.skip("needs the Redis broker (REDIS_URL)")
    settings.INGEST_PROCESS_CHUNK = 500
    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    broker.delete("ingest")
    celery_app.conf.task_always_eager = False
    try:
        events_enqueue(list(range(1, 301)))
        assert broker.llen("ingest") == 0
        events_enqueue(list(range(301, 601)))
        assert broker.llen("ingest") == 1  # published by the call itself
        deadline = time.monotonic() + 10
        while broker.llen("ingest") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        messages = [json.loads(raw) for raw in reversed(broker.lrange("ingest", 0, -1))]
    finally:
        celery_app.conf.task_always_eager = True
        broker.delete("ingest")
    chunks = [json.loads(base64.b64decode(m["body"]))[0][0] for m in messages]
    assert chunks == [list(range(1, 501)), list(range(501, 601))]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_events_are_committed_and_processed(source):
    from django.db import connection

    assert not connection.in_atomic_block
    result = ingest_messages(source=source, messages=[track(messageId="a"), track(messageId="b")])
    assert result.accepted == 2
    assert Event.objects.filter(pk__in=result.event_ids, processed_at__isnull=False).count() == 2
    again = ingest_messages(source=source, messages=[track(messageId="a")])
    assert (again.accepted, again.duplicates) == (0, 1)
