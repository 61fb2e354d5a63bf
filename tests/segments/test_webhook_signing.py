"""Segment webhooks are signed: a real HTTP receiver verifies `X-CDP-Signature` the way the
README tells integrators to, with the secret it got from the API."""

import hashlib
import hmac
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from rest_framework.test import APIClient

from access.models import AuditLog
from segments import services
from segments.models import Segment, WebhookDelivery
from tests.cdp.metrics_helpers import sample

pytestmark = pytest.mark.django_db

GERMANS = {"trait": "country", "op": "eq", "value": "DE"}


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """The receiver's check, written from the README (not from the service's code)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(expected.hexdigest(), parts.get("v1", ""))


class _VerifyingReceiver(BaseHTTPRequestHandler):
    secret = ""
    accepted: list[bytes] = []
    refused: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(self.secret, self.headers.get("X-CDP-Signature", ""), body)
        (self.accepted if ok else self.refused).append(body)
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    _VerifyingReceiver.accepted, _VerifyingReceiver.refused = [], []
    server = HTTPServer(("127.0.0.1", 0), _VerifyingReceiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, _VerifyingReceiver
    server.shutdown()


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.force_authenticate(marketer)
    return client


def _hooked_segment(api, url: str, django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/segments/",
            {"name": "Germans", "definition": GERMANS, "webhook_url": url},
            format="json",
        )
    assert response.status_code == 201
    return response.json()["id"]


def test_a_receiver_verifies_the_signature_with_the_secret_from_the_api(
    api, profile_maker, receiver, django_capture_on_commit_callbacks
):
    server, handler = receiver
    url = f"http://127.0.0.1:{server.server_port}/hook"
    segment_id = _hooked_segment(api, url, django_capture_on_commit_callbacks)
    answer = api.post(f"/api/v1/segments/{segment_id}/webhook-secret/", {}, format="json")
    assert answer.status_code == 200
    assert answer.json()["header"] == "X-CDP-Signature"
    handler.secret = answer.json()["secret"]
    assert handler.secret.startswith("whsec_")
    profile_maker(traits={"country": "DE"})
    sent = sample("cdp_deliveries_total", channel="segment_webhook", outcome="sent")
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_refresh(segment=Segment.objects.get(pk=segment_id))
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "sent" and delivery.attempts == 1
    assert sample("cdp_deliveries_total", channel="segment_webhook", outcome="sent") == sent + 1
    assert len(handler.accepted) == 1 and not handler.refused
    # The receiver checked the exact bytes it was sent: the recorded payload.
    assert b'"entered": [' in handler.accepted[0]


def test_a_tampered_body_or_an_old_timestamp_does_not_verify():
    secret = "whsec_test"
    body = b'{"entered": [1]}'
    now = int(time.time())
    header = services.webhook_signature(secret=secret, timestamp=now, body=body)
    assert verify(secret, header, body)
    assert not verify(secret, header, b'{"entered": [2]}')
    assert not verify("whsec_other", header, body)
    old = services.webhook_signature(secret=secret, timestamp=now - 3600, body=body)
    assert not verify(secret, old, body)


def test_rotating_the_secret_makes_the_old_one_fail(
    api, profile_maker, receiver, django_capture_on_commit_callbacks
):
    server, handler = receiver
    url = f"http://127.0.0.1:{server.server_port}/hook"
    segment_id = _hooked_segment(api, url, django_capture_on_commit_callbacks)
    old = api.post(f"/api/v1/segments/{segment_id}/webhook-secret/", {}).json()["secret"]
    # Asking again gives the same secret; rotating gives a new one.
    assert api.post(f"/api/v1/segments/{segment_id}/webhook-secret/", {}).json()["secret"] == old
    new = api.post(
        f"/api/v1/segments/{segment_id}/webhook-secret/", {"rotate": True}, format="json"
    ).json()["secret"]
    assert new != old
    handler.secret = old
    profile_maker(traits={"country": "DE"})
    services.segment_refresh(segment=Segment.objects.get(pk=segment_id))
    delivery = WebhookDelivery.objects.get()
    with pytest.raises(services.TransientError):
        services.webhook_delivery_send(delivery_id=delivery.pk)
    assert len(handler.refused) == 1
    handler.secret = new
    services.webhook_delivery_send(delivery_id=delivery.pk)
    assert len(handler.accepted) == 1
    rows = AuditLog.objects.filter(action="webhook_secret", resource_id=str(segment_id))
    assert sorted(r.details["rotated"] for r in rows) == [False, False, True]


def test_each_segment_has_its_own_secret_and_none_is_stored(
    api, django_capture_on_commit_callbacks
):
    first = Segment.objects.get(pk=_hooked_segment(api, "", django_capture_on_commit_callbacks))
    second = Segment.objects.get(pk=_hooked_segment(api, "", django_capture_on_commit_callbacks))
    secrets = {services.webhook_secret(segment=s) for s in (first, second)}
    assert len(secrets) == 2
    stored = [str(row) for row in Segment.objects.values()]
    assert not any(secret.removeprefix("whsec_") in row for secret in secrets for row in stored)


@pytest.mark.parametrize("who", ["compliance", "reader_key", "anonymous"])
def test_only_writers_get_the_secret(who, compliance, api_client_with_scopes, admin_user):
    segment = Segment.objects.create(name="s", definition=GERMANS)
    if who == "compliance":
        client = APIClient()
        client.force_authenticate(compliance)
    elif who == "reader_key":
        client = api_client_with_scopes("segments:read")
    else:
        client = APIClient()
    response = client.post(f"/api/v1/segments/{segment.pk}/webhook-secret/", {})
    assert response.status_code in (401, 403)
    writer = api_client_with_scopes("segments:write")
    assert writer.post(f"/api/v1/segments/{segment.pk}/webhook-secret/", {}).status_code == 200
    admin = APIClient()
    admin.force_authenticate(admin_user)
    assert admin.post(f"/api/v1/segments/{segment.pk}/webhook-secret/", {}).status_code == 200
