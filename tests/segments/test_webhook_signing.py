"""Segment webhooks are signed with Standard Webhooks and sent by the same sender as campaign
webhooks: a real HTTP receiver verifies them with the `standardwebhooks` library and the secret
the API showed once; a rotation keeps the old secret signing for a day; every webhook URL is
checked when saved."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from rest_framework.test import APIClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from access.models import AuditLog
from segments import services
from segments.models import Segment, WebhookDelivery
from tests.cdp.metrics_helpers import sample

pytestmark = pytest.mark.django_db

GERMANS = {"trait": "country", "op": "eq", "value": "DE"}


class _VerifyingReceiver(BaseHTTPRequestHandler):
    secret = ""
    accepted: list[bytes] = []
    refused: list[bytes] = []
    ids: list[str] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.ids.append(self.headers["webhook-id"])
        try:
            Webhook(self.secret).verify(body, dict(self.headers))
            ok = True
        except WebhookVerificationError:
            ok = False
        (self.accepted if ok else self.refused).append(body)
        self.send_response(200 if ok else 401)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver():
    _VerifyingReceiver.accepted, _VerifyingReceiver.refused = [], []
    _VerifyingReceiver.ids = []
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


def _hooked_segment(api, url: str, django_capture_on_commit_callbacks) -> dict:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/segments/",
            {"name": "Germans", "definition": GERMANS, "webhook_url": url},
            format="json",
        )
    assert response.status_code == 201, response.content
    return response.json()


def test_a_receiver_verifies_the_signature_with_the_secret_shown_at_creation(
    api, profile_maker, receiver, django_capture_on_commit_callbacks
):
    server, handler = receiver
    created = _hooked_segment(
        api, f"http://127.0.0.1:{server.server_port}/hook", django_capture_on_commit_callbacks
    )
    handler.secret = created["webhook_secret"]
    assert handler.secret.startswith("whsec_")
    assert "webhook_secret" not in api.get(f"/api/v1/segments/{created['id']}/").json()
    profile_maker(traits={"country": "DE"})
    sent = sample("cdp_deliveries_total", channel="segment_webhook", outcome="sent")
    with django_capture_on_commit_callbacks(execute=True):
        services.segment_refresh(segment=Segment.objects.get(pk=created["id"]))
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "sent" and delivery.attempts == 1
    assert sample("cdp_deliveries_total", channel="segment_webhook", outcome="sent") == sent + 1
    assert len(handler.accepted) == 1 and not handler.refused
    assert handler.ids == [f"msg_seg_{delivery.pk}"]
    assert b'"entered":[' in handler.accepted[0]


def test_after_a_rotation_both_secrets_verify_until_the_overlap_ends(
    api, profile_maker, receiver, django_capture_on_commit_callbacks
):
    server, handler = receiver
    created = _hooked_segment(
        api, f"http://127.0.0.1:{server.server_port}/hook", django_capture_on_commit_callbacks
    )
    old = created["webhook_secret"]
    rotated = api.post(f"/api/v1/segments/{created['id']}/webhook-secret/", {}).json()
    new = rotated["secret"]
    assert new != old and rotated["previous_valid_until"]
    profile_maker(traits={"country": "DE"})
    services.segment_refresh(segment=Segment.objects.get(pk=created["id"]))
    delivery = WebhookDelivery.objects.get()
    handler.secret = old  # a receiver that has not switched yet
    services.webhook_delivery_send(delivery_id=delivery.pk)
    assert len(handler.accepted) == 1

    Segment.objects.filter(pk=created["id"]).update(previous_webhook_secret_until=None)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state="pending")
    with pytest.raises(services.TransientError):
        services.webhook_delivery_send(delivery_id=delivery.pk)
    assert len(handler.refused) == 1  # the overlap is over: the old secret fails
    handler.secret = new
    services.webhook_delivery_send(delivery_id=delivery.pk)
    assert len(handler.accepted) == 2
    rows = AuditLog.objects.filter(action="webhook_secret", resource_id=str(created["id"]))
    assert [r.details["rotated"] for r in rows] == [True]


def test_each_segment_has_its_own_secret_and_none_is_stored(
    api, django_capture_on_commit_callbacks
):
    first = Segment.objects.get(
        pk=_hooked_segment(api, "", django_capture_on_commit_callbacks)["id"]
    )
    second = Segment.objects.get(
        pk=_hooked_segment(api, "", django_capture_on_commit_callbacks)["id"]
    )
    secrets = {services.webhook_secret(segment=s) for s in (first, second)}
    assert len(secrets) == 2
    stored = [str(row) for row in Segment.objects.values()]
    assert not any(secret.removeprefix("whsec_") in row for secret in secrets for row in stored)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://100.64.0.1/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/hook",
        "http://localhost:22/",
        "ftp://example.com/hook",
        "https://example.com/" + "a" * 2000,
    ],
)
def test_a_webhook_url_the_platform_may_not_call_is_a_400_naming_the_field(api, settings, url):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    created = api.post(
        "/api/v1/segments/",
        {"name": "Germans", "definition": GERMANS, "webhook_url": url},
        format="json",
    )
    assert created.status_code == 400 and "webhook_url" in created.json(), created.content
    segment = Segment.objects.create(name="s", definition=GERMANS)
    patched = api.patch(f"/api/v1/segments/{segment.pk}/", {"webhook_url": url}, format="json")
    assert patched.status_code == 400 and "webhook_url" in patched.json()
    channel = api.post(
        "/api/v1/channels/",
        {"kind": "webhook", "name": "hook", "config": {"url": url}},
        format="json",
    )
    assert channel.status_code == 400 and "config" in channel.json(), channel.content


def test_the_allow_list_lets_an_on_premises_receiver_be_saved(api, settings):
    settings.OUTBOUND_ALLOWED_HOSTS = ["10.0.0.0/8"]
    created = api.post(
        "/api/v1/segments/",
        {"name": "Germans", "definition": GERMANS, "webhook_url": "http://10.0.0.5/hook"},
        format="json",
    )
    assert created.status_code == 201


def test_a_long_public_webhook_url_is_saved(api):
    url = "https://hooks.example.com/" + "a" * 500
    created = api.post(
        "/api/v1/segments/",
        {"name": "Germans", "definition": GERMANS, "webhook_url": url},
        format="json",
    )
    assert created.status_code == 201 and created.json()["webhook_url"] == url


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
