"""The delivery path's rules with a frozen clock: frequency caps, quiet hours in the recipient's
zone, entry policies, versioning, idempotency, SMTP faults, and the sweep after a crash."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Delivery, Entry
from campaigns.tasks import delivery_send_task
from profiles.models import Event
from tests.campaigns.conftest import CART, cart_reminder, person, track
from tests.cdp.metrics_helpers import sample

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 10, 0, tzinfo=dt.UTC)


def _send_now(channel, **overrides):
    """A journey that sends at once on every cart event."""
    body = cart_reminder(channel, entry="every_time", **overrides)
    body["steps"] = body["steps"][1:]
    return body


def _deliveries_for(source, profile, times: int, callbacks) -> list[Delivery]:
    start = timezone.now()
    for n in range(times):
        with callbacks(execute=True):
            track(source, profile, CART, at=start + dt.timedelta(seconds=n))
    return list(Delivery.objects.filter(profile=profile).order_by("pk"))


def test_the_global_cap_allows_three_marketing_messages_a_week(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(_send_now(email_channel))
    ann = person(email_address="ann@example.com")
    deliveries = _deliveries_for(source, ann, 4, django_capture_on_commit_callbacks)
    assert [d.status for d in deliveries] == ["sent", "sent", "sent", "skipped"]
    assert deliveries[3].skip_reason == Delivery.SkipReason.CAPPED
    assert len(smtp.to("ann@example.com")) == 3


def test_a_campaign_may_set_its_own_cap(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(_send_now(email_channel, frequency_cap={"messages": 1, "days": 1}))
    ann = person(email_address="ann@example.com")
    deliveries = _deliveries_for(source, ann, 2, django_capture_on_commit_callbacks)
    assert [d.skip_reason for d in deliveries] == ["", "capped"]


def test_transactional_messages_are_not_capped(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(_send_now(email_channel, kind="transactional"))
    ann = person(email_address="ann@example.com")
    deliveries = _deliveries_for(source, ann, 4, django_capture_on_commit_callbacks)
    assert {d.status for d in deliveries} == {"sent"}


def _queued_delivery(source, channel, make_campaign, profile) -> Delivery:
    make_campaign(_send_now(channel))
    track(source, profile, CART, at=timezone.now())
    (entry,) = Entry.objects.filter(profile=profile)
    services.entries_advance(entry_ids=[entry.pk])
    return Delivery.objects.get(profile=profile)


def test_quiet_hours_delay_a_send_to_their_end_in_the_recipients_zone(
    source, smtp, email_channel, make_campaign, settings
):
    settings.CAMPAIGN_QUIET_HOURS = (21, 8)
    berliner = person(email_address="b@example.com", timezone="Europe/Berlin")
    delivery = _queued_delivery(source, email_channel, make_campaign, berliner)
    late_evening = dt.datetime(2026, 6, 15, 20, 30, tzinfo=dt.UTC)  # 22:30 in Berlin

    services.delivery_send(delivery_id=delivery.pk, now=late_evening)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED and delivery.delay_reason == "quiet_hours"
    assert delivery.send_after == dt.datetime(2026, 6, 16, 6, 0, tzinfo=dt.UTC)  # 08:00 CEST
    services.delivery_send(delivery_id=delivery.pk, now=delivery.send_after - dt.timedelta(1))
    assert smtp.messages == []

    services.delivery_send(delivery_id=delivery.pk, now=delivery.send_after)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and len(smtp.messages) == 1


def test_quiet_hours_use_the_workspace_zone_without_a_recipient_zone(
    source, smtp, email_channel, make_campaign, settings
):
    settings.CAMPAIGN_QUIET_HOURS = (21, 8)
    settings.CAMPAIGN_TIMEZONE = "America/New_York"
    ann = person(email_address="ann@example.com")
    delivery = _queued_delivery(source, email_channel, make_campaign, ann)
    # 20:30 UTC is 16:30 in New York: not quiet there.
    services.delivery_send(
        delivery_id=delivery.pk, now=dt.datetime(2026, 6, 15, 20, 30, tzinfo=dt.UTC)
    )
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


def test_a_wait_until_an_hour_ends_at_that_hour_in_the_recipients_zone(
    source, email_channel, make_campaign
):
    body = cart_reminder(email_channel)
    body["steps"][0] = {"wait": {"until_hour": 9}}
    make_campaign(body)
    tokyo = person(email_address="t@example.com", timezone="Asia/Tokyo")
    track(source, tokyo, CART, at=timezone.now())
    entry = Entry.objects.get()
    Entry.objects.filter(pk=entry.pk).update(due_at=NOW)
    services.entries_advance(entry_ids=[entry.pk], now=NOW)  # 19:00 in Tokyo
    entry.refresh_from_db()
    assert entry.due_at == dt.datetime(2026, 6, 16, 0, 0, tzinfo=dt.UTC)  # 09:00 JST
    assert entry.step_path == [1]


def _fire(profile, campaign_at: dt.datetime) -> list[Entry]:
    event = Event(event=CART, timestamp=campaign_at, properties={})
    return services.campaign_triggers_fire(
        resolved=[(profile, [event])], changes=[], now=campaign_at
    )


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("once", [1, 0, 0]),
        ("every_time", [1, 1, 1]),
        ({"once_per": {"days": 7}}, [1, 0, 1]),
    ],
)
def test_entry_policies(entry, expected, email_channel, make_campaign):
    make_campaign(cart_reminder(email_channel, entry=entry))
    ann = person(email_address="ann@example.com")
    moments = [NOW, NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=8)]
    assert [len(_fire(ann, at)) for at in moments] == expected
    assert list(Entry.objects.order_by("number").values_list("number", flat=True)) == list(
        range(1, sum(expected) + 1)
    )


def test_people_inside_finish_the_version_they_entered(
    source, smtp, email_channel, make_campaign, admin_user, django_capture_on_commit_callbacks
):
    campaign = make_campaign(cart_reminder(email_channel))
    early = person(email_address="early@example.com")
    now = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        track(source, early, CART, at=now)

    changed = cart_reminder(email_channel)
    changed["steps"][1]["send"]["message"]["subject"] = "Version two"
    services.campaign_update(
        campaign=campaign,
        actor=admin_user,
        definition={key: changed[key] for key in ("trigger", "entry", "goal", "steps")},
    )
    late = person(email_address="late@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        track(source, late, CART, at=now)

    assert campaign.versions.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        services.entries_due_advance(now=now + dt.timedelta(minutes=61))
    assert smtp.to("early@example.com")[0]["Subject"] == "You left something"
    assert smtp.to("late@example.com")[0]["Subject"] == "Version two"
    versions = dict(Delivery.objects.values_list("profile_id", "version__number"))
    assert versions == {early.pk: 1, late.pk: 2}


def test_editing_a_draft_keeps_one_version(email_channel, make_campaign, admin_user):
    campaign = make_campaign(cart_reminder(email_channel, status="draft"))
    body = cart_reminder(email_channel, entry="every_time")
    services.campaign_update(
        campaign=campaign,
        actor=admin_user,
        definition={key: body[key] for key in ("trigger", "entry", "goal", "steps")},
    )
    assert campaign.versions.get().definition["entry"] == "every_time"


def test_a_send_task_run_twice_sends_once(source, smtp, email_channel, make_campaign):
    ann = person(email_address="ann@example.com")
    delivery = _queued_delivery(source, email_channel, make_campaign, ann)
    sent = sample("cdp_deliveries_total", channel="email", outcome="sent")
    delivery_send_task.apply(args=[delivery.pk])
    delivery_send_task.apply(args=[delivery.pk])
    assert len(smtp.messages) == 1
    assert Delivery.objects.get().attempts == 1
    assert sample("cdp_deliveries_total", channel="email", outcome="sent") == sent + 1


def test_advancing_an_entry_twice_records_one_delivery(source, email_channel, make_campaign):
    make_campaign(_send_now(email_channel))
    ann = person(email_address="ann@example.com")
    track(source, ann, CART, at=timezone.now())
    entry = Entry.objects.get()
    services.entries_advance(entry_ids=[entry.pk])
    services.entries_advance(entry_ids=[entry.pk])
    Entry.objects.filter(pk=entry.pk).update(status="active", step_path=[0], due_at=timezone.now())
    services.entries_advance(entry_ids=[entry.pk])  # as if the first run's commit was lost
    assert Delivery.objects.count() == 1


def test_an_smtp_5xx_fails_the_delivery_for_good(source, smtp, email_channel, make_campaign):
    smtp.refuse = "550 5.1.1 No such user"
    delivery = _queued_delivery(
        source, email_channel, make_campaign, person(email_address="x@example.com")
    )
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and "550" in delivery.last_error


def test_an_smtp_4xx_is_retried_later_with_backoff(source, smtp, email_channel, make_campaign):
    smtp.refuse = "451 4.3.0 Try again later"
    delivery = _queued_delivery(
        source, email_channel, make_campaign, person(email_address="x@example.com")
    )
    services.delivery_send(delivery_id=delivery.pk, now=NOW)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED and delivery.attempts == 1
    assert delivery.send_after == NOW + dt.timedelta(seconds=5)

    smtp.refuse = None
    services.delivery_send(delivery_id=delivery.pk, now=delivery.send_after)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 2
    assert len(smtp.messages) == 1


def test_an_unreachable_smtp_server_is_a_transient_failure(
    source, email_channel, make_campaign, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # discard port: refused
    delivery = _queued_delivery(
        source, email_channel, make_campaign, person(email_address="x@example.com")
    )
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED and delivery.last_error


def test_the_sweep_never_resends_what_a_dead_worker_left_sending(
    source, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    ann = person(email_address="ann@example.com")
    delivery = _queued_delivery(source, email_channel, make_campaign, ann)
    Delivery.objects.filter(pk=delivery.pk).update(status="sending")
    later = timezone.now() + dt.timedelta(hours=1)
    with django_capture_on_commit_callbacks() as queued:
        services.deliveries_sweep(now=later)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and queued == []


def test_the_sweep_requeues_a_queued_delivery_whose_task_was_lost(
    source, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    _queued_delivery(source, email_channel, make_campaign, person(email_address="a@example.com"))
    with django_capture_on_commit_callbacks() as queued:
        assert services.deliveries_sweep(now=timezone.now() + dt.timedelta(minutes=5)) == 1
    assert len(queued) == 1
