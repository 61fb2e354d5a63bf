"""The ways events are stored on PostgreSQL (COPY for requests with many events, one INSERT of a
JSON array, one INSERT of parameters for single events, grouped across concurrent requests)
store exactly the same rows; duplicates are still skipped (stored ones, inside a request or a
group, and concurrent ones), quarantine still works beside COPY, a retried request changes
nothing, and a failed group write fails its requests, not the next ones."""

import threading
import time

import psycopg2
import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from access.models import Source
from access.services import source_create
from profiles.ingestion import ingest_messages
from profiles.ingestion.messages import message_prepare
from profiles.ingestion.storage import (
    COPY_MIN_ROWS,
    _insert_copy,
    _insert_postgresql,
    _single_row_writer,
    events_insert,
)
from profiles.models import Event, QuarantinedMessage

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="COPY is PostgreSQL's"),
]

STORED = [
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "properties",
    "traits",
    "context",
    "payload",
    "is_bot",
    "violations",
    "processed_at",
    "profile_id",
]
# Everything COPY's text format gives a meaning to, plus quotes, unicode and an escaped NUL.
AWKWARD = 'tab\there, new\nline, cr\r, back\\slash, \\N, \\t, "quoted", émoji 🎉, nul\x00'


def track(n: int, **fields):
    return {"type": "track", "userId": f"u{n}", "event": "Clicked", "messageId": f"m{n}", **fields}


def awkward_messages() -> list[dict]:
    messages = [
        track(
            n,
            event=f"{AWKWARD} {n}",
            userId=f"user\t{n}\\",
            anonymousId=f"anon\n{n}",
            properties={AWKWARD: [AWKWARD, n, n / 3, None, True, {"k\\": "v\t"}], "big": 10**18},
            context={"userAgent": "Googlebot/2.1 (+http://www.google.com/bot.html)", "ip": "::1"},
            timestamp="2024-03-04T05:06:07.123456+02:00",
            sentAt="2024-03-04T05:06:08Z",
        )
        for n in range(COPY_MIN_ROWS)
    ]
    messages.append(
        {"type": "identify", "userId": 7, "messageId": "id\\7", "traits": {"name": AWKWARD}}
    )
    messages.append({"type": "page", "anonymousId": "a", "name": AWKWARD, "messageId": "p"})
    return messages


def prepared(messages: list[dict], received_at) -> list:
    return [
        message_prepare(
            index,
            message,
            batch_context=None,
            batch_integrations=None,
            batch_sent_at=None,
            received_at=received_at,
        )
        for index, message in enumerate(messages)
    ]


def stored_rows(source) -> list[tuple]:
    return list(Event.objects.filter(source=source).order_by("message_id").values_list(*STORED))


def test_copy_stores_exactly_the_rows_the_insert_statement_stores(source):
    by_insert = source_create(name="Insert").record
    received_at = timezone.now()
    rows = prepared(awkward_messages(), received_at)
    copied_ids = _insert_copy(source, rows, received_at)
    inserted_ids = _insert_postgresql(by_insert, rows, received_at)
    assert copied_ids is not None and len(copied_ids) == len(inserted_ids) == len(rows)
    assert sorted(copied_ids) == sorted(
        Event.objects.filter(source=source).values_list("id", flat=True)
    )
    assert stored_rows(source) == stored_rows(by_insert)
    event = Event.objects.get(source=source, message_id="m0")
    assert event.event == AWKWARD.replace("\x00", "\ufffd") + " 0"
    assert event.is_bot and event.user_id == "user\t0\\"


def test_single_row_statements_store_exactly_what_the_array_statement_stores(source):
    one_by_one = source_create(name="One by one").record
    received_at = timezone.now()
    rows = prepared(awkward_messages(), received_at)
    assert len(_insert_postgresql(source, rows, received_at)) == len(rows)
    for row in rows:
        assert len(_insert_postgresql(one_by_one, [row], received_at)) == 1
        assert _insert_postgresql(one_by_one, [row], received_at) == []  # the duplicate skipped
    assert stored_rows(source) == stored_rows(one_by_one)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    strings=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=5),
    properties=st.dictionaries(st.text(max_size=20), json_values, max_size=5),
)
def test_copy_and_inserts_agree_on_any_strings_and_properties(strings, properties):
    with transaction.atomic():
        by_copy = source_create(name="Copy").record
        by_insert = source_create(name="Insert").record
        by_row = source_create(name="Row by row").record
        messages = [
            track(n, event=strings[n % len(strings)], userId=strings[-1], properties=properties)
            for n in range(COPY_MIN_ROWS)
        ]
        received_at = timezone.now()
        rows = prepared(messages, received_at)
        assert _insert_copy(by_copy, rows, received_at) is not None
        _insert_postgresql(by_insert, rows, received_at)
        for row in rows:
            _insert_postgresql(by_row, [row], received_at)
        assert stored_rows(by_copy) == stored_rows(by_insert) == stored_rows(by_row)
        transaction.set_rollback(True)


def test_a_stored_duplicate_makes_copy_store_nothing_and_the_insert_skips_it(source):
    received_at = timezone.now()
    first = ingest_messages(source=source, messages=[track(n) for n in range(COPY_MIN_ROWS)])
    assert first.accepted == COPY_MIN_ROWS
    messages = [track(n) for n in range(COPY_MIN_ROWS - 1, 2 * COPY_MIN_ROWS)]
    assert _insert_copy(source, prepared(messages, received_at), received_at) is None
    assert Event.objects.count() == COPY_MIN_ROWS  # the savepoint was rolled back
    again = ingest_messages(source=source, messages=messages)
    assert (again.accepted, again.duplicates) == (COPY_MIN_ROWS, 1)
    assert Event.objects.count() == 2 * COPY_MIN_ROWS
    assert sorted(again.event_ids) == sorted(
        Event.objects.filter(
            message_id__in=[f"m{n}" for n in range(COPY_MIN_ROWS, 40)]
        ).values_list("id", flat=True)
    )


def test_duplicates_inside_a_copied_request_are_stored_once(source):
    messages = [track(n % COPY_MIN_ROWS) for n in range(2 * COPY_MIN_ROWS + 1)]
    result = ingest_messages(source=source, messages=messages)
    assert (result.accepted, result.duplicates) == (COPY_MIN_ROWS, COPY_MIN_ROWS + 1)
    assert Event.objects.count() == COPY_MIN_ROWS


def test_quarantine_beside_a_copied_batch_with_a_stored_duplicate(client, source):
    ingest_messages(source=source, messages=[track(0)])
    batch = [track(n) for n in range(2 * COPY_MIN_ROWS)] + [
        {"type": "track", "userId": "u", "messageId": "no-event"},
        {"type": "identify", "messageId": "no-ids"},
    ]
    result = ingest_messages(source=source, messages=batch)
    assert (result.accepted, result.duplicates, result.quarantined) == (
        2 * COPY_MIN_ROWS - 1,
        1,
        2,
    )
    assert Event.objects.count() == 2 * COPY_MIN_ROWS
    assert set(QuarantinedMessage.objects.values_list("message_id", flat=True)) == {
        "no-event",
        "no-ids",
    }


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_copied_events_are_committed_processed_and_idempotent(source):
    assert not connection.in_atomic_block
    messages = [track(n, userId=f"u{n % 3}") for n in range(COPY_MIN_ROWS + 5)]
    result = ingest_messages(source=source, messages=messages)
    assert result.accepted == len(messages)
    assert not connection.in_atomic_block
    processed = Event.objects.filter(pk__in=result.event_ids, processed_at__isnull=False)
    assert processed.count() == len(messages)
    again = ingest_messages(source=source, messages=messages)
    assert (again.accepted, again.duplicates) == (0, len(messages))
    assert Event.objects.count() == len(messages)
    extra = ingest_messages(source=source, messages=[*messages, track(999)])
    assert (extra.accepted, extra.duplicates) == (1, len(messages))


@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_the_same_batch_store_it_once(source):
    """Both requests COPY at once: the second waits on the unique index, then falls back to the
    statement that skips what the first stored."""
    messages = [track(n) for n in range(3 * COPY_MIN_ROWS)]
    received_at = timezone.now()
    rows = prepared(messages, received_at)
    results: list[list[int]] = []
    barrier = threading.Barrier(2)

    def ingest() -> None:
        try:
            barrier.wait()
            results.append(events_insert(source, rows, received_at))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ingest) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(ids) for ids in results) == [0, len(messages)]
    assert Event.objects.count() == len(messages)


# --- Group commit of single events -------------------------------------------------------------


def _run_in_threads(count: int, target) -> list:
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            results[index] = target(index)
        except Exception as exc:  # reported to the test through the results
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _wait_until(condition) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.django_db(transaction=True)
def test_concurrent_single_events_are_all_stored_once_with_their_own_ids(source):
    other = source_create(name="App").record
    received_at = timezone.now()
    # 24 requests: 16 distinct events of two sources, and 8 repeats of some of them.
    messages = [(source if n % 2 else other, track(n % 16)) for n in range(24)]
    barrier = threading.Barrier(len(messages))

    def send(index: int) -> list[int]:
        event_source, message = messages[index]
        (row,) = prepared([message], received_at)
        barrier.wait()
        return events_insert(event_source, [row], received_at)

    results = _run_in_threads(len(messages), send)
    assert not [r for r in results if isinstance(r, Exception)], results
    stored = {(e.source_id, e.message_id): e.id for e in Event.objects.all()}
    assert len(stored) == 16
    firsts = {}
    for (event_source, message), ids in zip(messages, results, strict=True):
        key = (event_source.pk, message["messageId"])
        if ids:
            assert ids == [stored[key]] and key not in firsts  # its own row, stored once
            firsts[key] = ids
    assert set(firsts) == set(stored)


@pytest.mark.django_db(transaction=True)
def test_single_events_waiting_on_a_write_are_committed_together(source):
    """While one single event's INSERT is blocked (here by another transaction holding the same
    messageId), the next two wait and are then written in one transaction (same xmin)."""
    received_at = timezone.now()
    rows = prepared([track(0), track(1), track(2)], received_at)
    blocker = psycopg2.connect(**connection.get_connection_params())
    try:
        with blocker.cursor() as cursor:  # holds messageId m0, uncommitted
            cursor.execute(
                "INSERT INTO profiles_event (source_id, message_id, type, event, user_id,"
                " anonymous_id, timestamp, received_at, properties, traits, context, payload,"
                " is_bot, violations) VALUES (%s, 'm0', 'track', 'x', 'u', '', now(), now(),"
                " '{}', '{}', '{}', '{}', false, '[]')",
                [source.pk],
            )

        def send(index: int) -> list[int]:
            if index:
                _wait_until(lambda: _single_row_writer._writing)
            return events_insert(source, [rows[index]], received_at)

        results: list = []
        senders = threading.Thread(target=lambda: results.extend(_run_in_threads(3, send)))
        senders.start()
        _wait_until(lambda: len(_single_row_writer._waiting) == 2)
        blocker.rollback()
        senders.join(timeout=60)
    finally:
        blocker.close()
    assert all(isinstance(ids, list) and len(ids) == 1 for ids in results), results
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT message_id, xmin::text FROM profiles_event WHERE id = ANY(%s)",
            [[ids[0] for ids in results]],
        )
        xmins = dict(cursor.fetchall())
    assert xmins["m1"] == xmins["m2"] != xmins["m0"]


@pytest.mark.django_db(transaction=True)
def test_a_failed_group_write_fails_its_requests_and_the_next_ones_are_stored(source):
    received_at = timezone.now()
    gone = Source(pk=source.pk + 1000, name="Deleted meanwhile")  # never saved: no such row
    (row,) = prepared([track(1)], received_at)
    with pytest.raises(IntegrityError):
        events_insert(gone, [row], received_at)
    assert events_insert(source, [row], received_at) != []
    assert Event.objects.filter(source=source, message_id="m1").count() == 1
