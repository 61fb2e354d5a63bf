"""Webhook channel against a real HTTP receiver that verifies Standard Webhooks signatures with
the `standardwebhooks` library; faults (500 then success, 410, down, slow); SSRF refused when a
URL is saved and again when it is called; the unsubscribe link signed only for a message that
reads it."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from campaigns import messages, services
from campaigns.models import Channel, Delivery, Entry
from campaigns.services.delivery import SEND_CHUNK
from campaigns.tracking import unsubscribe_url
from tests.campaigns.conftest import CART, cart_reminder, delivery_make, person, track

pytestmark = pytest.mark.django_db


class Receiver:
    """A local HTTP endpoint: answers with `statuses` in turn (then 200), keeps what it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.delay = 0.0
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                time.sleep(receiver.delay)
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.OUTBOUND_TIMEOUT = 1.0
    hook = Receiver()
    yield hook
    hook.close()


@pytest.fixture
def hook_channel(receiver, admin_user) -> tuple[Channel, str]:
    return services.channel_create(
        kind="webhook", name="CRM", config={"url": receiver.url}, actor=admin_user
    )


def _delivery(source, channel, make_campaign) -> Delivery:
    body = cart_reminder(channel)
    body["steps"] = [
        {
            "send": {
                "channel": channel.pk,
                "message": {
                    "template": "cart",
                    "name": "{{ profile.traits.name | default: 'friend' }}",
                    "items": ["{{ event.properties.sku }}"],
                    "count": 2,
                },
            }
        }
    ]
    make_campaign(body)
    ann = person(traits={"name": "Ann"})
    track(source, ann, CART, at=timezone.now(), properties={"sku": "RED-1"})
    services.entries_advance(entry_ids=list(Entry.objects.values_list("pk", flat=True)))
    return Delivery.objects.get()


def test_a_webhook_send_is_signed_and_verifies_with_the_secret_shown_once(
    source, receiver, hook_channel, make_campaign
):
    channel, secret = hook_channel
    delivery = _delivery(source, channel, make_campaign)
    services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    ((headers, body),) = receiver.received
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "campaign.message"
    assert payload["data"]["message"] == {
        "template": "cart",
        "name": "Ann",
        "items": ["RED-1"],
        "count": 2,
    }
    assert headers["webhook-id"] == delivery.provider_message_id == f"msg_cdp_{delivery.pk}"


def test_a_webhook_message_that_reads_the_unsubscribe_link_carries_the_deliverys_link(
    source, receiver, hook_channel, make_campaign
):
    channel, secret = hook_channel
    body = cart_reminder(channel)
    message = {
        "plain": "no link here",
        "links": [{"optout": "{{ 'Stop: ' | append: unsubscribe_url }}"}],
    }
    body["steps"] = [{"send": {"channel": channel.pk, "message": message}}]
    make_campaign(body)
    track(source, person(), CART, at=timezone.now())
    services.entries_advance(entry_ids=list(Entry.objects.values_list("pk", flat=True)))
    delivery = Delivery.objects.get()
    services.delivery_send(delivery_id=delivery.pk)

    ((headers, sent),) = receiver.received
    rendered = Webhook(secret).verify(sent, headers)["data"]["message"]
    assert rendered == {
        "plain": "no link here",
        "links": [{"optout": "Stop: " + unsubscribe_url(delivery_id=delivery.pk)}],
    }


@pytest.mark.parametrize(
    ("message", "reads"),
    [
        ("{{ unsubscribe_url }}", True),
        ("{% if unsubscribe_url %}x{% endif %}", True),
        ("{% assign link = unsubscribe_url %}{{ link }}", True),
        ({"a": ["{{ profile.traits.name }}", {"b": "{{ unsubscribe_url }}"}]}, True),
        ("{{ 'unsubscribe_url' | upcase }}", False),  # a string, not the name
        ({"a": ["{{ profile.traits.name }}", 3, None]}, False),
        ("{% if %}", True),  # does not parse: it fails to render anyway
    ],
)
def test_a_message_reads_the_unsubscribe_link_only_where_a_template_names_it(message, reads):
    assert messages.reads(message, "unsubscribe_url") is reads


def test_a_500_is_retried_and_the_retry_keeps_its_webhook_id(
    source, receiver, hook_channel, make_campaign
):
    receiver.statuses = [500]
    delivery = _delivery(source, hook_channel[0], make_campaign)
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED and "500" in delivery.last_error

    services.delivery_send(delivery_id=delivery.pk, now=delivery.send_after)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 2
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert len(receiver.received) == 2 and len(ids) == 1


def test_a_batch_of_several_chunks_sends_each_delivery_once_and_records_its_own_outcome(
    receiver, hook_channel, make_campaign
):
    channel, secret = hook_channel
    body = cart_reminder(channel)
    body["steps"] = [
        {"wait": {"seconds": 0}},
        {"send": {"channel": channel.pk, "message": {"to": "{{ profile.id }}"}}},
    ]
    campaign = make_campaign(body)
    ids = [delivery_make(campaign, person(), channel).pk for _ in range(2 * SEND_CHUNK + 7)]
    receiver.statuses = [500, 500, 500]  # the first three to arrive, whichever they are
    services.deliveries_send(delivery_ids=ids)

    received = [Webhook(secret).verify(body, headers) for headers, body in receiver.received]
    assert sorted(payload["data"]["delivery"] for payload in received) == sorted(ids)
    for payload in received:
        assert payload["data"]["message"] == {"to": str(payload["data"]["profile"])}
    deliveries = Delivery.objects.filter(pk__in=ids)
    retried = deliveries.filter(status=Delivery.Status.QUEUED)
    assert retried.count() == 3 and all("500" in d.last_error for d in retried)
    sent = deliveries.filter(status=Delivery.Status.SENT)
    assert sent.count() == len(ids) - 3
    assert all(d.provider_message_id == f"msg_cdp_{d.pk}" for d in sent)


def test_a_410_fails_the_delivery_and_disables_the_channel(
    source, receiver, hook_channel, make_campaign
):
    receiver.statuses = [410]
    channel = hook_channel[0]
    delivery = _delivery(source, channel, make_campaign)
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    channel.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert not channel.is_active and "410" in channel.disabled_reason


@pytest.mark.parametrize("fault", ["down", "slow"])
def test_a_receiver_down_or_too_slow_is_retried(
    fault, source, receiver, hook_channel, make_campaign
):
    delivery = _delivery(source, hook_channel[0], make_campaign)
    if fault == "down":
        receiver.close()
    else:
        receiver.delay = 1.5
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED and delivery.last_error
    if fault == "slow":
        receiver.delay = 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://localhost/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:10.0.0.1]/",
        "http://100.64.0.1/",
        "http://user:pw@example.com/",
    ],
)
def test_ssrf_urls_are_refused_when_saved(admin_api, url):
    response = admin_api.post(
        "/api/v1/channels/",
        {"kind": "webhook", "name": "bad", "config": {"url": url}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["config"][0]["pointer"] == "/config/url"


def test_ssrf_urls_are_refused_again_when_sent(
    source, receiver, hook_channel, make_campaign, settings
):
    delivery = _delivery(source, hook_channel[0], make_campaign)
    settings.OUTBOUND_ALLOWED_HOSTS = []  # as if the name now resolved to a private address
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED and "refused" in delivery.last_error
    assert receiver.received == []


def test_an_unknown_consent_purpose_is_refused(admin_api, receiver):
    response = admin_api.post(
        "/api/v1/channels/",
        {"kind": "webhook", "name": "x", "config": {"url": receiver.url, "purpose": "nope"}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["config"][0]["pointer"] == "/config/purpose"


def test_a_webhooks_marketing_send_needs_its_purposes_consent(
    source, receiver, admin_user, make_campaign
):
    channel, _ = services.channel_create(
        kind="webhook",
        name="Ads",
        config={"url": receiver.url, "purpose": "advertising"},
        actor=admin_user,
    )
    delivery = _delivery(source, channel, make_campaign)
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.skip_reason == Delivery.SkipReason.NO_CONSENT  # advertising: opt-in
    assert receiver.received == []


def test_a_push_goes_to_the_device_token_in_fcm_v1_shape_signed(
    source, receiver, admin_user, make_campaign
):
    channel, secret = services.channel_create(
        kind="push", name="App push", config={"url": receiver.url}, actor=admin_user
    )
    body = cart_reminder(channel)
    body["steps"] = [
        {
            "send": {
                "channel": channel.pk,
                "message": {
                    "title": "Hi {{ profile.traits.name }}",
                    "body": "Your {{ event.properties.sku }} is waiting",
                    "url": "https://shop.example.com/cart",
                },
            }
        }
    ]
    make_campaign(body)
    phone = person(traits={"name": "Ann"})
    phone.context = {"device": {"token": "fcm-token-1", "type": "ios"}}
    phone.save()
    nobody = person()
    for someone in (phone, nobody):
        track(source, someone, CART, at=timezone.now(), properties={"sku": "RED-1"})
    services.entries_advance(entry_ids=list(Entry.objects.values_list("pk", flat=True)))
    for delivery in Delivery.objects.all():
        services.delivery_send(delivery_id=delivery.pk)

    ((headers, raw),) = receiver.received
    message = Webhook(secret).verify(raw, headers)["message"]
    assert message["token"] == "fcm-token-1"
    assert message["notification"] == {"title": "Hi Ann", "body": "Your RED-1 is waiting"}
    assert message["data"]["url"] == "https://shop.example.com/cart"
    assert Delivery.objects.get(profile=nobody).skip_reason == Delivery.SkipReason.NO_ADDRESS


def test_a_push_to_a_token_the_provider_reports_gone_fails_without_disabling_the_channel(
    source, receiver, admin_user, make_campaign
):
    channel, _ = services.channel_create(
        kind="push", name="App push", config={"url": receiver.url}, actor=admin_user
    )
    body = cart_reminder(channel)
    body["steps"] = [{"send": {"channel": channel.pk, "message": {"title": "t", "body": "b"}}}]
    make_campaign(body)
    phone = person()
    phone.context = {"device": {"token": "old"}}
    phone.save()
    track(source, phone, CART, at=timezone.now())
    services.entries_advance(entry_ids=list(Entry.objects.values_list("pk", flat=True)))
    receiver.statuses = [410]
    services.delivery_send(delivery_id=Delivery.objects.get().pk)
    channel.refresh_from_db()
    assert Delivery.objects.get().status == Delivery.Status.FAILED and channel.is_active


def test_after_a_rotation_both_secrets_verify_during_the_overlap(
    source, receiver, hook_channel, make_campaign, admin_user
):
    channel, old_secret = hook_channel
    new_secret = services.channel_secret_rotate(channel=channel, actor=admin_user)
    delivery = _delivery(source, channel, make_campaign)
    services.delivery_send(delivery_id=delivery.pk)
    ((headers, body),) = receiver.received
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old_secret, new_secret):
        assert Webhook(secret).verify(body, headers)["type"] == "campaign.message"


def test_after_the_overlap_only_the_new_secret_signs(
    source, receiver, hook_channel, make_campaign, admin_user
):
    channel, old_secret = hook_channel
    new_secret = services.channel_secret_rotate(channel=channel, actor=admin_user)
    Channel.objects.filter(pk=channel.pk).update(previous_secret_until=timezone.now())
    delivery = _delivery(source, Channel.objects.get(pk=channel.pk), make_campaign)
    services.delivery_send(delivery_id=delivery.pk)
    ((headers, body),) = receiver.received
    assert Webhook(new_secret).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(body, headers)


def test_a_channel_failing_for_days_is_disabled_and_a_success_clears_the_count(
    source, receiver, hook_channel, make_campaign, settings
):
    channel = hook_channel[0]
    receiver.statuses = [500, 500]
    delivery = _delivery(source, channel, make_campaign)
    services.delivery_send(delivery_id=delivery.pk)
    channel.refresh_from_db()
    assert channel.is_active and channel.failing_since is not None

    Channel.objects.filter(pk=channel.pk).update(
        failing_since=timezone.now() - dt.timedelta(days=settings.CAMPAIGN_CHANNEL_FAILING_DAYS)
    )
    delivery.refresh_from_db()
    services.delivery_send(delivery_id=delivery.pk, now=delivery.send_after)
    channel.refresh_from_db()
    assert not channel.is_active and "failed for 5 days" in channel.disabled_reason


def test_a_success_ends_a_failing_streak(source, receiver, hook_channel, make_campaign):
    channel = hook_channel[0]
    receiver.statuses = [500]
    delivery = _delivery(source, channel, make_campaign)
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    services.delivery_send(delivery_id=delivery.pk, now=delivery.send_after)
    channel.refresh_from_db()
    assert channel.is_active and channel.failing_since is None
