"""Hostile trait values are inert text; opens, clicks and the one-click unsubscribe through the
signed public links; segment and broadcast triggers; branches."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from campaigns import services
from campaigns.models import Delivery, DeliveryEvent, Entry
from campaigns.services import journeys
from campaigns.tracking import click_url, open_url, unsubscribe_token_read, unsubscribe_url
from consent.models import ConsentRecord
from consent.selectors import consent_allows
from profiles.models import Event
from segments.models import SegmentMembership
from segments.services import segment_create, segment_refresh
from tests.campaigns.conftest import CART, cart_reminder, person, track

pytestmark = pytest.mark.django_db


def _send_at_once(channel, message, **overrides):
    body = cart_reminder(channel, **overrides)
    body["steps"] = [{"send": {"channel": channel.pk, "message": message}}]
    return body


def _sent(source, profile, callbacks, properties=None) -> Delivery:
    with callbacks(execute=True):
        track(source, profile, CART, at=timezone.now(), properties=properties)
    return Delivery.objects.get(profile=profile)


def test_liquid_and_html_inside_traits_arrive_as_inert_text(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    message = {
        "subject": "Hi {{ profile.traits.name }}",
        "html": "<p>{{ profile.traits.name }} / {{ event.properties.note }}</p>",
        "text": "{{ profile.traits.name }}",
    }
    make_campaign(_send_at_once(email_channel, message))
    hostile = person(
        email_address="h@example.com",
        traits={"name": "{{ 7*7 }}{% include 'x' %}<script>alert(1)</script>"},
    )
    delivery = _sent(
        source, hostile, django_capture_on_commit_callbacks, {"note": "<img src=x onerror=1>"}
    )
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    (mail,) = smtp.messages
    html = mail.get_body(("html",)).get_content()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "{{ 7*7 }}{% include &#39;x&#39; %}" in html and "49" not in html
    assert "&lt;img src=x onerror=1&gt;" in html
    assert mail["Subject"] == "Hi {{ 7*7 }}{% include 'x' %}<script>alert(1)</script>"
    assert mail.get_body(("plain",)).get_content().strip().startswith("{{ 7*7 }}")


def test_a_newline_in_a_trait_cannot_add_a_mail_header(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(
        _send_at_once(email_channel, {"subject": "{{ profile.traits.name }}", "text": "x"})
    )
    sneaky = person(email_address="s@example.com", traits={"name": "Hi\r\nBcc: all@example.com"})
    _sent(source, sneaky, django_capture_on_commit_callbacks)
    (mail,) = smtp.messages
    assert mail["Bcc"] is None and mail["Subject"] == "Hi Bcc: all@example.com"


def test_opens_and_clicks_are_recorded_through_signed_links(
    client, source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(cart_reminder(email_channel, steps=cart_reminder(email_channel)["steps"][1:]))
    delivery = _sent(
        source, person(email_address="a@example.com"), django_capture_on_commit_callbacks
    )
    html = smtp.messages[0].get_body(("html",)).get_content()
    click = html.split('href="')[1].split('"')[0].replace("https://cdp.example.com", "")

    # A person reads later than a link scanner clicks (campaigns.bots), with a browser.
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now() - dt.timedelta(minutes=5))
    browser = {"HTTP_USER_AGENT": "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1"}
    redirected = client.get(click, **browser)
    assert redirected.status_code == 302
    assert redirected["Location"] == "https://shop.example.com/cart?x=1&y=2"
    pixel = client.get(
        open_url(delivery_id=delivery.pk).replace("https://cdp.example.com", ""), **browser
    )
    assert pixel.status_code == 200 and pixel["Content-Type"] == "image/gif"

    delivery.refresh_from_db()
    assert delivery.clicked_at and delivery.opened_at
    kinds = sorted(DeliveryEvent.objects.values_list("kind", flat=True))
    assert kinds == ["click", "open"]


def test_a_forged_or_altered_link_redirects_nowhere(client, email_channel):
    good = click_url(delivery_id=1, url="https://shop.example.com/")
    token = good.rstrip("/").rsplit("/", 1)[1]
    forged = token.replace(token[-5:], "AAAAA")
    assert client.get(f"/m/c/{forged}/").status_code == 404
    assert client.get("/m/c/evil/").status_code == 404
    assert client.get("/m/u/evil/").status_code == 404
    assert client.get("/m/o/evil.gif").status_code == 200  # the pixel answers the same anyway


def test_one_click_unsubscribe_writes_a_consent_record_and_a_get_never_unsubscribes(
    client, source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(_send_at_once(email_channel, {"subject": "x", "text": "{{ unsubscribe_url }}"}))
    ann = person(email_address="ann@example.com")
    delivery = _sent(source, ann, django_capture_on_commit_callbacks)
    # The link as sent: signing it again here could fall in the next second of its timestamp.
    link = smtp.messages[0].get_body(("plain",)).get_content().strip()
    assert unsubscribe_token_read(link.rstrip("/").rsplit("/", 1)[-1]) == delivery.pk
    path = link.replace("https://cdp.example.com", "")

    page = client.get(path)
    assert page.status_code == 200 and b"Your preferences" in page.content
    assert consent_allows(profile=ann, purpose="email_marketing")

    answer = client.post(path, {"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert not consent_allows(profile=ann, purpose="email_marketing")
    record = ConsentRecord.objects.get(profile=ann)
    assert (record.source, record.granted) == ("preference_center", False)
    client.post(path, {"List-Unsubscribe": "One-Click"})
    assert ConsentRecord.objects.filter(profile=ann).count() == 1


def test_the_preference_centre_sets_each_purpose(
    client, source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(_send_at_once(email_channel, {"subject": "x", "text": "y"}))
    ann = person(email_address="ann@example.com")
    delivery = _sent(source, ann, django_capture_on_commit_callbacks)
    path = unsubscribe_url(delivery_id=delivery.pk).replace("https://cdp.example.com", "")
    page = client.get(path).content.decode()
    assert 'value="email_marketing" checked' in page and 'value="push" checked' in page

    answer = client.post(path, {"purpose": ["push"]})
    assert b"Saved" in answer.content
    assert not consent_allows(profile=ann, purpose="email_marketing")
    assert consent_allows(profile=ann, purpose="push")
    assert list(ConsentRecord.objects.values_list("purpose__code", "source")) == [
        ("email_marketing", "preference_center")
    ]
    client.post(path, {"purpose": ["push", "email_marketing"]})
    assert consent_allows(profile=ann, purpose="email_marketing")


def test_entering_a_segment_starts_the_journey(
    source, email_channel, make_campaign, admin_user, django_capture_on_commit_callbacks
):
    segment = segment_create(
        name="VIPs", definition={"trait": "vip", "op": "eq", "value": True}, actor=admin_user
    )
    make_campaign(cart_reminder(email_channel, trigger={"segment": segment.pk, "on": "enter"}))
    ann = person(email_address="ann@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        track(source, ann, "Upgraded", at=timezone.now())
        assert not Entry.objects.exists()
        from cdp import pipeline
        from tests.identity.factories import event_make

        identify = event_make(source, "identify", user_id=ann.user_id, traits={"vip": True})
        pipeline.events_process(event_ids=[identify.pk])
    assert SegmentMembership.objects.filter(segment=segment, profile=ann).exists()
    entry = Entry.objects.get()
    assert entry.trigger == {"segment": segment.pk, "on": "enter"}


def pro_broadcast(email_channel, make_campaign, admin_user, count: int):
    """`count` people on the plan "pro", and an active broadcast to them due a minute ago."""
    pros = [person(email_address=f"p{n}@example.com", traits={"plan": "pro"}) for n in range(count)]
    segment = segment_create(
        name="Pro", definition={"trait": "plan", "op": "eq", "value": "pro"}, actor=admin_user
    )
    segment_refresh(segment=segment)
    at = timezone.now() - dt.timedelta(minutes=1)
    campaign = make_campaign(
        cart_reminder(
            email_channel, trigger={"broadcast": {"segment": segment.pk, "at": at.isoformat()}}
        )
    )
    return pros, campaign


def test_a_broadcast_enters_the_segment_in_batches_that_requeue_themselves(
    email_channel, make_campaign, admin_user, django_capture_on_commit_callbacks
):
    people, campaign = pro_broadcast(email_channel, make_campaign, admin_user, 5)
    with django_capture_on_commit_callbacks(execute=True):
        journeys.broadcast_batch(campaign_id=campaign.pk, batch=2)
    assert sorted(Entry.objects.values_list("profile_id", flat=True)) == [p.pk for p in people]
    campaign.refresh_from_db()
    assert campaign.broadcast_finished_at is not None
    assert journeys.broadcast_batch(campaign_id=campaign.pk, batch=2) == 0  # done: nothing twice
    assert services.broadcasts_due() == 0


@pytest.mark.django_db(transaction=True)
def test_a_broadcast_batch_goes_on_while_sends_of_the_campaign_are_being_recorded(
    email_channel, make_campaign, admin_user
):
    import threading

    from django.db import connection

    people, campaign = pro_broadcast(email_channel, make_campaign, admin_user, 3)
    holding, done = threading.Event(), threading.Event()

    def record_sends() -> None:
        # What inserting a delivery or entry of the campaign holds until it commits: a
        # key-share lock on the campaign's row (the foreign key's check).
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM campaigns_campaign WHERE id = %s FOR KEY SHARE", [campaign.pk]
                )
                holding.set()
                done.wait(10)
        finally:
            connection.close()

    other = threading.Thread(target=record_sends)
    other.start()
    try:
        assert holding.wait(10)
        assert journeys.broadcast_batch(campaign_id=campaign.pk, batch=10) == len(people)
    finally:
        done.set()
        other.join()
    assert Entry.objects.filter(campaign=campaign).count() == len(people)


def test_a_broadcast_waits_for_its_time(email_channel, make_campaign, admin_user):
    segment = segment_create(
        name="All", definition={"trait": "plan", "op": "exists"}, actor=admin_user
    )
    later = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    campaign = make_campaign(
        cart_reminder(email_channel, trigger={"broadcast": {"segment": segment.pk, "at": later}})
    )
    assert services.broadcast_batch(campaign_id=campaign.pk) == 0
    assert campaign.entries.count() == 0


def test_a_branch_sends_the_arm_its_condition_picks(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    def send(subject):
        return {"send": {"channel": email_channel.pk, "message": {"subject": subject, "text": "."}}}

    body = cart_reminder(email_channel)
    body["steps"] = [
        {
            "branch": {
                "if": {"trait": "vip", "op": "eq", "value": True},
                "then": [send("For VIPs")],
                "else": [send("For everyone")],
            }
        },
        send("After the branch"),
    ]
    make_campaign(body)
    vip = person(email_address="vip@example.com", traits={"vip": True})
    other = person(email_address="other@example.com")
    for someone in (vip, other):
        with django_capture_on_commit_callbacks(execute=True):
            track(source, someone, CART, at=timezone.now())
    assert [m["Subject"] for m in smtp.to("vip@example.com")] == ["For VIPs", "After the branch"]
    assert [m["Subject"] for m in smtp.to("other@example.com")] == [
        "For everyone",
        "After the branch",
    ]
    steps = set(Delivery.objects.values_list("step", flat=True))
    assert steps == {"/steps/0/branch/then/0", "/steps/0/branch/else/0", "/steps/1"}


def test_an_event_trigger_filters_on_properties(source, email_channel, make_campaign):
    make_campaign(
        cart_reminder(
            email_channel,
            entry="every_time",
            trigger={"event": CART, "where": [{"property": "price", "op": "gte", "value": 100}]},
        )
    )
    ann = person(email_address="ann@example.com")
    track(source, ann, CART, at=timezone.now(), properties={"price": 20})
    assert not Entry.objects.exists()
    track(source, ann, CART, at=timezone.now(), properties={"price": 120})
    assert Entry.objects.get().trigger["properties"] == {"price": 120}
    assert Event.objects.count() == 2


def _reminders(source, channel, make_campaign, callbacks, profile, times: int) -> list[Delivery]:
    if not channel.deliveries.exists():
        make_campaign(_send_at_once(channel, {"subject": "x", "text": "y"}, entry="every_time"))
    for _ in range(times):
        with callbacks(execute=True):
            track(source, profile, CART, at=timezone.now())
    return list(Delivery.objects.filter(profile=profile).order_by("pk"))


def test_a_hard_bounce_reported_by_the_esp_stops_sends_to_that_address(
    admin_api, source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    ann = person(email_address="ann@example.com")
    (first,) = _reminders(
        source, email_channel, make_campaign, django_capture_on_commit_callbacks, ann, 1
    )
    answer = admin_api.post(
        f"/api/v1/channels/{email_channel.pk}/feedback/",
        {"type": "bounce", "message_id": first.provider_message_id},
        format="json",
    )
    assert answer.status_code == 200
    later = _reminders(
        source, email_channel, make_campaign, django_capture_on_commit_callbacks, ann, 1
    )
    assert later[-1].skip_reason == Delivery.SkipReason.BOUNCED
    assert len(smtp.messages) == 1


def test_a_complaint_withdraws_the_channels_consent(
    admin_api, source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    ann = person(email_address="ann@example.com")
    (first,) = _reminders(
        source, email_channel, make_campaign, django_capture_on_commit_callbacks, ann, 1
    )
    admin_api.post(
        f"/api/v1/channels/{email_channel.pk}/feedback/",
        {"type": "complaint", "message_id": first.provider_message_id},
        format="json",
    )
    assert not consent_allows(profile=ann, purpose="email_marketing")


def test_feedback_for_an_unknown_message_is_a_404(admin_api, email_channel):
    response = admin_api.post(
        f"/api/v1/channels/{email_channel.pk}/feedback/",
        {"type": "bounce", "message_id": "<nope@example.com>"},
        format="json",
    )
    assert response.status_code == 404
