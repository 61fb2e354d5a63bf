"""The send path's shape: a person who enters is sent to by the task queued at entry (no second
trip through the queue), a retry of that task sends what an earlier run left unsent and
nothing twice, a batch's queries do not grow with its recipients, a batch of several chunks
goes over a few SMTP connections kept across them, each sent chunk is one audit row, only the
sent outcome's commit skips waiting for the disk (never the claim before the send), and the
tracking links built from a route reversed once are the links Django reverses."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from access.models import AuditLog
from access.selectors import audit_chain_verify
from campaigns import services
from campaigns.models import Delivery, Entry
from campaigns.services.delivery import SEND_CHUNK
from campaigns.tracking import click_url, open_url, unsubscribe_url
from tests.campaigns.conftest import CART, cart_reminder, delivery_make, person, track

pytestmark = pytest.mark.django_db


def _send_now(channel, **overrides):
    body = cart_reminder(channel, entry="every_time", **overrides)
    body["steps"] = [{"wait": {"seconds": 0}}, *body["steps"][1:]]
    return body


def test_the_task_queued_at_entry_sends_the_message_itself(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(_send_now(email_channel))
    ann = person(email_address="ann@example.com")
    with django_capture_on_commit_callbacks() as at_entry:
        track(source, ann, CART, at=timezone.now())
    assert len(at_entry) == 1  # entries_advance_task, queued by the pipeline's commit
    with django_capture_on_commit_callbacks() as after_advance:
        at_entry[0]()
    assert after_advance == []  # no deliveries_send_task: the message went in that task
    delivery = Delivery.objects.get(profile=ann)
    assert delivery.status == Delivery.Status.SENT
    assert len(smtp.to("ann@example.com")) == 1


def test_a_retried_entry_task_sends_what_an_earlier_run_left_unsent_and_nothing_twice(
    source, smtp, email_channel, make_campaign
):
    make_campaign(_send_now(email_channel))
    ann = person(email_address="ann@example.com")
    track(source, ann, CART, at=timezone.now())
    entry_ids = list(Entry.objects.values_list("pk", flat=True))
    # The first run recorded the delivery and stopped before sending (its queued send lost).
    services.entries_advance(entry_ids=entry_ids)
    assert Delivery.objects.get().status == Delivery.Status.QUEUED
    (sent,) = services.entries_advance_send(entry_ids=entry_ids)
    assert sent.status == Delivery.Status.SENT
    assert services.entries_advance_send(entry_ids=entry_ids) == []
    assert len(smtp.to("ann@example.com")) == 1 and Delivery.objects.count() == 1


def test_a_send_batch_runs_the_same_queries_for_few_recipients_as_for_many(
    smtp, email_channel, make_campaign
):
    campaign = make_campaign(_send_now(email_channel))
    people = [person(email_address=f"p{n}@example.com") for n in range(40)]
    few = [delivery_make(campaign, p, email_channel).pk for p in people[:4]]
    many = [delivery_make(campaign, p, email_channel).pk for p in people[4:]]
    counts = []
    for ids in (few, many):
        with CaptureQueriesContext(connection) as queries:
            services.deliveries_send(delivery_ids=ids)
        counts.append(len(queries))
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 40
    assert counts[0] == counts[1]


def test_an_email_batch_of_several_chunks_goes_over_a_few_connections_kept_across_them(
    smtp, email_channel, make_campaign, settings
):
    settings.CAMPAIGN_SEND_CONCURRENCY = 2  # fewer than the batch's chunks
    campaign = make_campaign(_send_now(email_channel))
    addresses = [f"p{n}@example.com" for n in range(2 * SEND_CHUNK + 7)]
    ids = [
        delivery_make(campaign, person(email_address=address), email_channel).pk
        for address in addresses
    ]
    services.deliveries_send(delivery_ids=ids)
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == len(ids)
    assert sorted(message["To"] for message in smtp.messages) == sorted(addresses)
    assert 1 <= smtp.sessions <= settings.CAMPAIGN_SEND_CONCURRENCY


def test_each_sent_chunk_is_one_audit_row_naming_every_delivery_its_person_and_campaign(
    smtp, email_channel, make_campaign
):
    campaign = make_campaign(_send_now(email_channel))
    people = [person(email_address=f"p{n}@example.com") for n in range(SEND_CHUNK + 3)]
    deliveries = [delivery_make(campaign, p, email_channel) for p in people]
    skipped = delivery_make(campaign, person(), email_channel)  # no address: not sent
    services.deliveries_send(delivery_ids=[d.pk for d in [*deliveries, skipped]])
    rows = AuditLog.objects.filter(action="campaign.send").order_by("id")
    assert len(rows) == 2  # a full chunk and the rest
    assert all(row.details["channel"] == email_channel.pk for row in rows)
    named = [item for row in rows for item in row.details["deliveries"]]
    assert sorted(named, key=lambda item: item["delivery"]) == [
        {"delivery": d.pk, "profile": d.profile_id, "campaign": campaign.pk} for d in deliveries
    ]
    assert audit_chain_verify().broken_row_id is None


def test_only_the_sent_outcome_skips_waiting_for_the_disk_never_the_claim_before_the_send(
    smtp, email_channel, make_campaign
):
    campaign = make_campaign(_send_now(email_channel))
    ids = [
        delivery_make(campaign, person(email_address=f"p{n}@example.com"), email_channel).pk
        for n in range(3)
    ]
    with CaptureQueriesContext(connection) as queries:
        services.deliveries_send(delivery_ids=ids)
    statements = [query["sql"] for query in queries.captured_queries]
    claim = next(n for n, sql in enumerate(statements) if "= 'sending'" in sql)
    asynchronous = [n for n, sql in enumerate(statements) if "synchronous_commit" in sql]
    assert asynchronous, "the outcome write waits for the disk"
    assert all(n > claim and "status = 'sent'" in statements[n] for n in asynchronous)
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 3


@given(delivery_id=st.integers(min_value=1, max_value=2**62), url=st.text(min_size=1))
def test_tracking_links_are_the_links_django_reverses(delivery_id, url):
    target = "https://shop.example.com/" + url
    for link, route in (
        (open_url(delivery_id=delivery_id), "open"),
        (click_url(delivery_id=delivery_id, url=target), "click"),
        (unsubscribe_url(delivery_id=delivery_id), "unsubscribe"),
    ):
        token = link.removesuffix(".gif").removesuffix("/").rsplit("/", 1)[1]
        path = reverse(f"campaigns-public:{route}", args=[token])
        assert link == "https://cdp.example.com" + path
