"""Browser Web Push against a real local HTTP receiver acting as the push service: the body is
RFC 8291 aes128gcm that the test subscription's private key decrypts, signed with VAPID; the
subscription API is scoped; a subscription the service reports gone (404/410) is removed, as
is a mobile token FCM reports UNREGISTERED."""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import Campaign, Channel, Delivery, PushSubscription, VapidKey
from campaigns.vapid import vapid_public_key
from tests.campaigns.conftest import delivery_make, person

pytestmark = pytest.mark.django_db


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class PushService:
    """A push service on loopback: answers `statuses` in turn (then 201), keeps requests."""

    def __init__(self) -> None:
        self.statuses: list[tuple[int, bytes]] = []
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                service.received.append((self.path, dict(self.headers), body))
                status, answer = service.statuses.pop(0) if service.statuses else (201, b"")
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def push_service(settings) -> Iterator[PushService]:
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    service = PushService()
    yield service
    service.server.shutdown()
    service.server.server_close()


class Browser:
    """A browser's push subscription: its own P-256 key pair and auth secret."""

    def __init__(self, endpoint: str) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)
        self.endpoint = endpoint
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.json = {
            "endpoint": endpoint,
            "keys": {"p256dh": _b64url(point), "auth": _b64url(self.auth)},
        }

    def decrypt(self, body: bytes) -> dict:
        plain = http_ece.decrypt(
            body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
        )
        return json.loads(plain)


@pytest.fixture
def web_push_channel(admin_user) -> Channel:
    channel, secret = services.channel_create(
        kind="web_push", name="Browser", config={"ttl": 600}, actor=admin_user
    )
    assert secret is None
    return channel


@pytest.fixture
def api(marketer) -> APIClient:
    client = APIClient()
    client.force_authenticate(marketer)
    return client


def _campaign(channel: Channel, make_campaign) -> Campaign:
    return make_campaign(
        {
            "name": "Back in stock",
            "trigger": {"event": "Never"},
            "steps": [
                {"wait": {"seconds": 0}},
                {
                    "send": {
                        "channel": channel.pk,
                        "message": {
                            "title": "Hi {{ profile.traits.first_name | default: 'there' }}",
                            "body": "It is back",
                            "url": "https://shop.example.com/item/1",
                        },
                    }
                },
            ],
        }
    )


def test_a_push_is_encrypted_for_the_browser_and_signed_with_vapid(
    api, push_service, web_push_channel, make_campaign
):
    someone = person(traits={"first_name": "Ada"})
    browser = Browser(push_service.base + "/push/abc")
    registered = api.post(
        "/api/v1/push-subscriptions/",
        {"userId": someone.user_id, "subscription": browser.json},
        format="json",
    )
    assert registered.status_code == 201, registered.content
    assert registered.json()["profile"] == someone.pk

    campaign = _campaign(web_push_channel, make_campaign)
    delivery = delivery_make(campaign, someone, web_push_channel)
    services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    path, headers, body = push_service.received[0]
    assert path == "/push/abc"
    assert headers["Content-Encoding"] == "aes128gcm" and headers["TTL"] == "600"
    assert b"Ada" not in body  # encrypted, not plain JSON
    notification = browser.decrypt(body)
    assert notification["title"] == "Hi Ada" and notification["url"].endswith("/item/1")
    # The VAPID token (an ES256 JWT for the push service's origin) verifies with the public
    # key the API hands to pages.
    scheme, _, params = headers["Authorization"].partition(" ")
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert scheme == "vapid"
    assert fields["k"] == api.get("/api/v1/push-subscriptions/").json()["publicKey"]
    signed, _, signature = fields["t"].rpartition(".")
    raw = _unb64url(signature)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64url(fields["k"]))
    public.verify(
        encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
        signed.encode(),
        ec.ECDSA(hashes.SHA256()),
    )
    claims = json.loads(_unb64url(signed.split(".")[1]))
    assert claims["aud"] == push_service.base and claims["sub"].startswith("mailto:")


@pytest.mark.parametrize("gone", [404, 410])
def test_a_subscription_the_push_service_reports_gone_is_removed(
    push_service, web_push_channel, make_campaign, marketer, gone
):
    someone = person()
    dead, alive = Browser(push_service.base + "/dead"), Browser(push_service.base + "/alive")
    for browser in (dead, alive):
        services.push_subscription_register(
            profile=someone,
            endpoint=browser.endpoint,
            p256dh=browser.json["keys"]["p256dh"],
            auth=browser.json["keys"]["auth"],
            actor=marketer,
        )
    push_service.statuses = [(gone, b"")]
    campaign = _campaign(web_push_channel, make_campaign)
    first = delivery_make(campaign, someone, web_push_channel)
    services.delivery_send(delivery_id=first.pk)

    first.refresh_from_db()
    assert first.status == Delivery.Status.SENT  # the other browser took it
    assert list(PushSubscription.objects.values_list("endpoint", flat=True)) == [alive.endpoint]

    push_service.statuses = [(gone, b"")]
    second = delivery_make(campaign, someone, web_push_channel, number=2)
    services.delivery_send(delivery_id=second.pk)
    second.refresh_from_db()
    assert second.status == Delivery.Status.FAILED and "gone" in second.last_error
    assert not PushSubscription.objects.exists()


def test_a_person_without_a_subscription_is_skipped_for_no_address(
    push_service, web_push_channel, make_campaign
):
    campaign = _campaign(web_push_channel, make_campaign)
    delivery = delivery_make(campaign, person(), web_push_channel)
    services.delivery_send(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.skip_reason) == ("skipped", "no_address")
    assert push_service.received == []


def test_a_mobile_token_fcm_reports_unregistered_is_removed(admin_user, make_campaign, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    provider = PushService()
    answer = {"error": {"status": "NOT_FOUND", "details": [{"errorCode": "UNREGISTERED"}]}}
    provider.statuses = [(400, json.dumps(answer).encode())]
    channel, _ = services.channel_create(
        kind="push", name="FCM", config={"url": provider.base + "/fcm"}, actor=admin_user
    )
    someone = person()
    someone.context = {"device": {"token": "tok-1", "type": "android"}}
    someone.save(update_fields=["context"])
    delivery = delivery_make(_campaign(channel, make_campaign), someone, channel)
    try:
        services.delivery_send(delivery_id=delivery.pk)
    finally:
        provider.server.shutdown()
        provider.server.server_close()
    delivery.refresh_from_db()
    someone.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert someone.context == {"device": {"type": "android"}}
    channel.refresh_from_db()
    assert channel.is_active  # the token is gone, not the provider


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://169.254.169.254/latest"}, "subscription.endpoint"),
        ({"keys": {"p256dh": "AAAA", "auth": _b64url(b"x" * 16)}}, "subscription.keys.p256dh"),
        ({"keys": {"p256dh": None, "auth": "x"}}, "subscription"),
    ],
)
def test_a_bad_subscription_is_a_400_naming_the_field(api, push_service, change, field):
    someone = person()
    body = {**Browser(push_service.base + "/p").json, **change}
    response = api.post(
        "/api/v1/push-subscriptions/", {"profile": someone.pk, "subscription": body}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_subscriptions_need_the_campaigns_write_scope(api_client_with_scopes, push_service):
    someone = person()
    body = {"profile": someone.pk, "subscription": Browser(push_service.base + "/p").json}
    reader = api_client_with_scopes("campaigns:read")
    assert reader.get("/api/v1/push-subscriptions/").status_code == 200
    assert reader.post("/api/v1/push-subscriptions/", body, format="json").status_code == 403
    writer = api_client_with_scopes("campaigns:write")
    assert writer.post("/api/v1/push-subscriptions/", body, format="json").status_code == 201
    other = api_client_with_scopes("profiles:read")
    assert other.get("/api/v1/push-subscriptions/").status_code == 403
    gone = writer.delete(
        "/api/v1/push-subscriptions/?" + urlencode({"endpoint": body["subscription"]["endpoint"]})
    )
    assert gone.status_code == 204 and not PushSubscription.objects.exists()


def test_the_generated_vapid_key_is_stored_encrypted(settings):
    settings.WEBPUSH_VAPID_PRIVATE_KEY = ""
    public = vapid_public_key()
    row = VapidKey.objects.get()
    assert row.public_key == public and "PRIVATE KEY" not in row.private_key_encrypted
    assert vapid_public_key() == public  # one key, read back
