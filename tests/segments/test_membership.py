"""Materialised membership: refresh records enters/exits and snapshots; the real-time stage
re-evaluates only affected segments; time-relative conditions move on the scheduled refresh;
changes are announced by signal and sent to a webhook (a real HTTP receiver on loopback)."""

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from profiles.models import Event
from segments import services
from segments.models import (
    MembershipChange,
    Segment,
    SegmentMembership,
    SegmentSnapshot,
    WebhookDelivery,
)
from segments.services import realtime
from segments.signals import segment_membership_changed
from tests.segments.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def announcements():
    received = []

    def listener(sender, **kwargs):
        received.append(kwargs)

    segment_membership_changed.connect(listener)
    yield received
    segment_membership_changed.disconnect(listener)


def _segment(definition, **extra):
    return services.segment_create(name="s", definition=definition, **extra)


def test_refresh_records_enter_and_exit_with_history_and_snapshots(
    profile_maker, announcements, django_capture_on_commit_callbacks
):
    de = profile_maker(traits={"country": "DE"})
    fr = profile_maker(traits={"country": "FR"})
    segment = _segment({"trait": "country", "op": "eq", "value": "DE"})
    with django_capture_on_commit_callbacks(execute=True):
        first = services.segment_refresh(segment=segment, now=NOW)
    assert first.entered == [de.pk] and first.exited == [] and first.size == 1
    de.traits = {"country": "AT"}
    de.save()
    fr.traits = {"country": "DE"}
    fr.save()
    with django_capture_on_commit_callbacks(execute=True):
        second = services.segment_refresh(segment=segment, now=NOW + dt.timedelta(hours=1))
    assert second.entered == [fr.pk] and second.exited == [de.pk]
    assert list(
        SegmentMembership.objects.filter(segment=segment).values_list("profile_id", flat=True)
    ) == [fr.pk]
    history = list(
        MembershipChange.objects.filter(segment=segment)
        .order_by("at", "kind")
        .values_list("profile_id", "kind")
    )
    assert history == [(de.pk, "enter"), (fr.pk, "enter"), (de.pk, "exit")]
    assert list(SegmentSnapshot.objects.filter(segment=segment).values_list("size", flat=True)) == [
        1,
        1,
    ]
    assert [(a["entered"], a["exited"]) for a in announcements] == [
        ([de.pk], []),
        ([fr.pk], [de.pk]),
    ]
    # Refreshing again changes nothing and announces nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.segment_refresh(segment=segment, now=NOW).entered == []
    assert len(announcements) == 2


def _track(source, profile, name, at, **props):
    return Event.objects.create(
        source=source,
        message_id=f"{name}-{at.timestamp()}-{profile.pk}",
        type="track",
        event=name,
        timestamp=at,
        received_at=at,
        properties=props,
        profile=profile,
    )


def test_real_time_enter_and_exit_after_events(
    source, profile_maker, announcements, django_capture_on_commit_callbacks
):
    person = profile_maker(traits={"country": "DE"})
    viewers = _segment({"event": "Product Viewed", "count": {"op": "gte", "value": 2}})
    buyers_not = _segment({"none": [{"event": "Order Completed"}]})
    unrelated = _segment({"event": "Newsletter Opened"})
    services.segment_refresh(segment=buyers_not, now=NOW)
    assert SegmentMembership.objects.filter(segment=buyers_not, profile=person).exists()

    event = _track(source, person, "Product Viewed", NOW)
    assert {s.id for s in services.segment_candidates(events=[event])} == {viewers.pk}
    assert services.segment_memberships_refresh(resolved=[(person, [event])], now=NOW) == []
    event = _track(source, person, "Product Viewed", NOW + dt.timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        changes = services.segment_memberships_refresh(resolved=[(person, [event])], now=NOW)
    assert changes == [services.MembershipTransition(viewers.pk, person.pk, True)]
    assert SegmentMembership.objects.filter(segment=viewers, profile=person).exists()

    order = _track(source, person, "Order Completed", NOW + dt.timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        changes = services.segment_memberships_refresh(resolved=[(person, [order])], now=NOW)
    assert changes == [services.MembershipTransition(buyers_not.pk, person.pk, False)]
    assert not SegmentMembership.objects.filter(segment=buyers_not, profile=person).exists()
    assert [
        (a["segment"].pk, a["entered"], a["exited"], a["cause"]) for a in announcements[-2:]
    ] == [
        (viewers.pk, [person.pk], [], "realtime"),
        (buyers_not.pk, [], [person.pk], "realtime"),
    ]
    assert not MembershipChange.objects.filter(segment=unrelated).exists()


def test_real_time_checks_a_whole_chunk_with_one_query_and_records_each_change(
    source,
    profile_maker,
    announcements,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    germans = _segment({"trait": "country", "op": "eq", "value": "DE"})
    viewers = _segment({"event": "Product Viewed", "count": {"op": "gte", "value": 2}})
    quiet = _segment({"none": [{"event": "Product Viewed", "within": {"days": 7}}]})
    people = [profile_maker(traits={"country": "DE" if n % 2 else "FR"}) for n in range(6)]
    services.segment_refresh(segment=quiet, now=NOW)
    assert SegmentMembership.objects.filter(segment=quiet).count() == 6
    resolved = []
    for n, person in enumerate(people):
        events = [
            _track(source, person, "Product Viewed", NOW - dt.timedelta(minutes=k))
            for k in range(n % 3)
        ]
        if n == 0:
            person.traits = {"country": "DE"}
            person.save()
            events.append(
                Event.objects.create(
                    source=source,
                    message_id="identify-0",
                    type="identify",
                    traits=person.traits,
                    timestamp=NOW,
                    received_at=NOW,
                    profile=person,
                )
            )
        resolved.append((person, events))

    services.segment_index()  # loaded once per process, not per chunk
    # One statement evaluates every segment and reads the current memberships, one writes
    # the enters, the exits and their history; the announcements go after commit.
    with (
        django_capture_on_commit_callbacks(execute=True),
        django_assert_num_queries(2),
    ):
        changes = services.segment_memberships_refresh(resolved=resolved, now=NOW)

    viewed = [p.pk for n, p in enumerate(people) if n % 3]
    twice = [p.pk for n, p in enumerate(people) if n % 3 == 2]
    assert changes == sorted(
        [services.MembershipTransition(germans.pk, people[0].pk, True)]
        + [services.MembershipTransition(viewers.pk, pk, True) for pk in twice]
        + [services.MembershipTransition(quiet.pk, pk, False) for pk in viewed],
        key=lambda c: (c.segment_id, not c.entered, c.profile_id),
    )
    assert set(
        SegmentMembership.objects.filter(segment=viewers).values_list("profile_id", flat=True)
    ) == set(twice)
    assert set(
        SegmentMembership.objects.filter(segment=quiet).values_list("profile_id", flat=True)
    ) == {p.pk for p in people} - set(viewed)
    by_segment = {a["segment"].pk: (a["entered"], a["exited"]) for a in announcements}
    assert by_segment == {
        germans.pk: ([people[0].pk], []),
        viewers.pk: (twice, []),
        quiet.pk: ([], viewed),
    }
    # Germans other than person 0 sent no trait: their membership was not even re-checked.
    assert not SegmentMembership.objects.filter(segment=germans).exclude(profile=people[0]).exists()

    # The same chunk again changes nothing and records nothing.
    before = MembershipChange.objects.count()
    assert services.segment_memberships_refresh(resolved=resolved, now=NOW) == []
    assert MembershipChange.objects.count() == before


def test_real_time_records_only_what_it_changed_itself(source, profile_maker, announcements):
    viewers = _segment({"event": "Product Viewed"})
    person = profile_maker()
    event = _track(source, person, "Product Viewed", NOW)
    # A full refresh committed in between: the row is there already, so nothing is recorded
    # twice.
    services.segment_refresh(segment=viewers, now=NOW)
    entered = MembershipChange.objects.filter(segment=viewers, kind="enter").count()
    assert realtime._memberships_apply([(viewers.pk, person.pk)], [], NOW) == []
    assert services.segment_memberships_refresh(resolved=[(person, [event])], now=NOW) == []
    assert MembershipChange.objects.filter(segment=viewers, kind="enter").count() == entered


def test_scheduled_refresh_moves_time_relative_conditions(
    profile_maker, django_capture_on_commit_callbacks
):
    person = profile_maker(
        last_order_at=NOW - dt.timedelta(days=20), last_seen=NOW - dt.timedelta(days=20)
    )
    lapsed = _segment({"computed": "recency", "op": "gt", "value": 30})
    assert lapsed.dependencies["time_relative"] is True
    services.segment_refresh(segment=lapsed, now=NOW)
    assert not SegmentMembership.objects.filter(segment=lapsed).exists()
    # No event happens; eleven days later the beat refresh finds the profile lapsed.
    services.segment_refresh(segment=lapsed, now=NOW + dt.timedelta(days=11))
    assert SegmentMembership.objects.filter(segment=lapsed, profile=person).exists()
    with django_capture_on_commit_callbacks(execute=True):
        assert services.segments_refresh_all() == [lapsed.pk]


def test_archived_segments_are_not_refreshed_nor_indexed(profile_maker):
    profile_maker(traits={"country": "DE"})
    segment = _segment({"trait": "country", "op": "exists"})
    services.segment_archive(segment=segment)
    assert services.segment_refresh(segment=segment, now=NOW).entered == []
    assert segment.pk not in {s.id for s in services.segment_index()}


class _Receiver(BaseHTTPRequestHandler):
    bodies: list = []
    status = 200

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    _Receiver.bodies = []
    _Receiver.status = 200
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _Receiver
    server.shutdown()


def test_webhook_is_recorded_then_sent_after_commit(
    profile_maker, receiver, django_capture_on_commit_callbacks
):
    server, handler = receiver
    person = profile_maker(traits={"country": "DE"})
    url = f"http://127.0.0.1:{server.server_port}/hook"
    with django_capture_on_commit_callbacks(execute=True):
        segment = _segment({"trait": "country", "op": "eq", "value": "DE"}, webhook_url=url)
    assert handler.bodies == [
        {
            "segment": {"id": segment.pk, "name": "s"},
            "at": handler.bodies[0]["at"],
            "cause": "definition",
            "entered": [person.pk],
            "exited": [],
        }
    ]
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "sent" and delivery.attempts == 1
    # Redelivery of the task does not send twice.
    services.webhook_delivery_send(delivery_id=delivery.pk)
    assert len(handler.bodies) == 1


def test_real_time_changes_reach_the_webhook_after_commit(
    source, profile_maker, receiver, django_capture_on_commit_callbacks
):
    server, handler = receiver
    url = f"http://127.0.0.1:{server.server_port}/hook"
    segment = _segment({"event": "Product Viewed"}, webhook_url=url)
    quiet = _segment({"event": "Signed In"})
    person = profile_maker()
    event = _track(source, person, "Product Viewed", NOW)
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_memberships_refresh(resolved=[(person, [event])], now=NOW)
    sent = [(b["segment"]["id"], b["cause"], b["entered"], b["exited"]) for b in handler.bodies]
    assert sent == [(segment.pk, "realtime", [person.pk], [])]
    assert not WebhookDelivery.objects.filter(segment=quiet).exists()


def test_a_failing_webhook_is_retried_then_marked_failed(profile_maker, receiver):
    server, handler = receiver
    handler.status = 503
    profile_maker(traits={"country": "DE"})
    url = f"http://127.0.0.1:{server.server_port}/hook"
    segment = _segment({"trait": "country", "op": "eq", "value": "DE"}, webhook_url=url)
    services.segment_refresh(segment=segment, now=NOW)
    delivery = WebhookDelivery.objects.get()
    # What the task's autoretry does, attempt by attempt.
    for _ in range(services.WEBHOOK_MAX_ATTEMPTS - 1):
        with pytest.raises(services.TransientError):
            services.webhook_delivery_send(delivery_id=delivery.pk)
    services.webhook_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == "failed" and delivery.attempts == services.WEBHOOK_MAX_ATTEMPTS
    assert delivery.last_error == "HTTP 503"
    assert len(handler.bodies) == services.WEBHOOK_MAX_ATTEMPTS


def test_segment_of_segment_depends_on_the_inner_definition(profile_maker):
    inner = _segment({"event": "Signed Up"})
    outer = _segment(
        {"all": [{"segment": inner.pk}, {"trait": "plan", "op": "eq", "value": "pro"}]}
    )
    assert set(outer.dependencies["event_names"]) == {"Signed Up"}
    services.segment_update(segment=inner, definition={"event": "Trial Started"})
    outer.refresh_from_db()
    assert set(outer.dependencies["event_names"]) == {"Trial Started"}
    assert Segment.objects.count() == 2


def test_a_webhook_to_a_private_address_is_refused_at_once_without_a_request(
    profile_maker, receiver, settings
):
    server, handler = receiver
    settings.OUTBOUND_ALLOWED_HOSTS = []  # the receiver's loopback address is no longer allowed
    profile_maker(traits={"country": "DE"})
    url = f"http://127.0.0.1:{server.server_port}/hook"
    segment = _segment({"trait": "country", "op": "eq", "value": "DE"}, webhook_url=url)
    services.segment_refresh(segment=segment, now=NOW)
    delivery = WebhookDelivery.objects.get()
    services.webhook_delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.state == "failed" and delivery.attempts == 1
    assert delivery.last_error.startswith("refused")
    assert handler.bodies == []
