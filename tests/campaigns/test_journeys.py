"""The cart-reminder journey end to end: events through the real pipeline, waits stored as due
times and advanced by the beat service with a frozen clock, mail to a real SMTP server."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Delivery, Entry
from campaigns.selectors import campaign_stats
from consent.services import consent_record, suppression_create
from identity.services import profile_merge, profile_unmerge
from tests.campaigns.conftest import CART, ORDER, cart_reminder, person, track

pytestmark = pytest.mark.django_db

HOUR = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
def ann():
    return person(email_address="ann@example.com", traits={"first_name": "Ann"})


def _after_wait(callbacks, now: dt.datetime) -> None:
    with callbacks(execute=True):
        services.entries_due_advance(now=now + 61 * MINUTE)


def test_added_to_cart_and_no_order_within_the_wait_sends_the_reminder(
    source, smtp, email_channel, make_campaign, ann, django_capture_on_commit_callbacks
):
    campaign = make_campaign(cart_reminder(email_channel))
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, ann, CART, at=now, properties={"name": "Red shoes"})

    entry = Entry.objects.get(campaign=campaign, profile=ann)
    assert entry.status == Entry.Status.ACTIVE and entry.due_at >= now + 59 * MINUTE
    assert smtp.messages == [] and not Delivery.objects.exists()

    _after_wait(django_capture_on_commit_callbacks, now)

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    assert delivery.step == "/steps/1" and delivery.version.number == 1
    (message,) = smtp.to("ann@example.com")
    assert message["Subject"] == "You left Red shoes"
    assert message["From"] == "The Shop <shop@example.com>"
    assert message["Message-ID"] == delivery.provider_message_id
    assert message["List-Unsubscribe"].strip().startswith("<https://cdp.example.com/m/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "Hi Ann," in html and "Hi Ann" in text
    assert 'href="https://cdp.example.com/m/c/' in html and "shop.example.com" not in html
    assert '<img src="https://cdp.example.com/m/o/' in html
    assert len(delivery.message_digest) == 64
    entry.refresh_from_db()
    assert entry.status == Entry.Status.COMPLETED


def test_ordering_inside_the_wait_ends_the_journey_without_a_send(
    source, smtp, email_channel, make_campaign, ann, django_capture_on_commit_callbacks
):
    campaign = make_campaign(cart_reminder(email_channel))
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, ann, CART, at=now)
        track(source, ann, ORDER, at=now + dt.timedelta(minutes=20))

    entry = Entry.objects.get(campaign=campaign)
    assert entry.status == Entry.Status.EXITED and entry.exit_reason == Entry.ExitReason.GOAL
    assert entry.converted_at == now + dt.timedelta(minutes=20)
    _after_wait(django_capture_on_commit_callbacks, now)
    assert smtp.messages == [] and not Delivery.objects.exists()


def test_an_order_stored_before_the_wait_ends_is_seen_at_the_send_too(
    source, smtp, email_channel, make_campaign, ann, django_capture_on_commit_callbacks
):
    """The goal is checked again when the steps run, not only as events arrive."""
    campaign = make_campaign(cart_reminder(email_channel))
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, ann, CART, at=now)
    Entry.objects.filter(campaign=campaign).update(goal_until=now + 3 * 24 * HOUR)
    # An order that reached the database by another path than this stage (e.g. a backfill).
    order = track(source, person(), ORDER, at=now + dt.timedelta(minutes=5))
    order.__class__.objects.filter(pk=order.pk).update(profile=ann)
    _after_wait(django_capture_on_commit_callbacks, now)
    assert Entry.objects.get(campaign=campaign).exit_reason == Entry.ExitReason.GOAL
    assert smtp.messages == []


def test_consent_withdrawn_during_the_wait_stops_the_send(
    source, smtp, email_channel, make_campaign, ann, django_capture_on_commit_callbacks
):
    make_campaign(cart_reminder(email_channel))
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, ann, CART, at=now)
    consent_record(profile=ann, purpose="email_marketing", granted=False, source="api")

    _after_wait(django_capture_on_commit_callbacks, now)

    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SKIPPED
    assert delivery.skip_reason == Delivery.SkipReason.NO_CONSENT
    assert smtp.messages == []


@pytest.mark.parametrize("kind", ["marketing", "transactional"])
def test_a_suppressed_person_is_never_sent_even_a_transactional_message(
    kind, source, smtp, email_channel, make_campaign, ann, django_capture_on_commit_callbacks
):
    make_campaign(cart_reminder(email_channel, kind=kind))
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, ann, CART, at=now)
    suppression_create(identifiers={"email": "ann@example.com"}, profile_ids=[ann.pk])

    _after_wait(django_capture_on_commit_callbacks, now)

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.skip_reason) == ("skipped", "suppressed")
    assert smtp.messages == []


def test_transactional_messages_need_no_marketing_consent(
    source, smtp, email_channel, make_campaign, ann, django_capture_on_commit_callbacks
):
    make_campaign(cart_reminder(email_channel, kind="transactional"))
    consent_record(profile=ann, purpose="email_marketing", granted=False, source="api")
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, ann, CART, at=now)
    _after_wait(django_capture_on_commit_callbacks, now)
    assert Delivery.objects.get().status == Delivery.Status.SENT
    assert len(smtp.to("ann@example.com")) == 1


def test_a_person_without_an_address_is_skipped_and_counted(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    campaign = make_campaign(cart_reminder(email_channel))
    nobody = person()
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, nobody, CART, at=now)
    _after_wait(django_capture_on_commit_callbacks, now)
    assert Delivery.objects.get().skip_reason == Delivery.SkipReason.NO_ADDRESS
    stats = campaign_stats(campaign=campaign)
    assert stats["skipped"] == 1 and stats["skipped_by_reason"] == {"no_address": 1}


def test_a_merge_moves_the_journey_so_an_order_by_the_merged_person_ends_it(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    campaign = make_campaign(cart_reminder(email_channel))
    browser = person()  # an anonymous visitor who added to cart
    known = person(email_address="ann@example.com")
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, browser, CART, at=now)
    profile_merge(survivor=known, duplicate=browser)
    entry = Entry.objects.get(campaign=campaign)
    assert entry.profile_id == known.pk and entry.number == 1

    with django_capture_on_commit_callbacks(execute=True):
        track(source, known, ORDER, at=now + dt.timedelta(minutes=10))
    entry.refresh_from_db()
    assert entry.exit_reason == Entry.ExitReason.GOAL
    _after_wait(django_capture_on_commit_callbacks, now)
    assert smtp.messages == []


def test_an_unmerge_gives_the_journeys_back(source, email_channel, make_campaign, admin_user):
    make_campaign(cart_reminder(email_channel, entry="every_time"))
    first, second = person(), person(email_address="ann@example.com")
    now = timezone.now()
    track(source, first, CART, at=now)
    track(source, second, CART, at=now)
    survivor = profile_merge(survivor=second, duplicate=first)
    assert sorted(Entry.objects.values_list("profile_id", "number")) == [
        (second.pk, 1),
        (second.pk, 2),
    ]
    profile_unmerge(merge_record=survivor.merge_record, actor=admin_user)
    assert sorted(Entry.objects.values_list("profile_id", "number")) == sorted(
        [(first.pk, 1), (second.pk, 1)]
    )
