import csv
import io
from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from access.models import AuditLog
from access.pii import pii_for, pii_pseudonym
from access.services import audit_record
from consent import services
from consent.models import PrivacyRequest, RetentionPolicy
from profiles.models import Event, QuarantinedMessage
from segments.models import Segment, WebhookDelivery

pytestmark = pytest.mark.django_db


# --- retention -------------------------------------------------------------------------------


def test_retention_purges_only_events_older_than_their_policy_in_batches(make_person):
    person = make_person(events=10)  # one event per day back, alternating two names
    RetentionPolicy.objects.create(event_name="Product Viewed", days=3)
    RetentionPolicy.objects.create(event_name="*", days=7)
    deleted = services.retention_purge(batch_size=2)
    left = list(person.profile.events.values_list("event", "timestamp"))
    now = timezone.now()
    assert all(
        now - ts <= timedelta(days=3 if name == "Product Viewed" else 7) for name, ts in left
    )
    assert deleted == 10 - len(left) and deleted > 0
    assert RetentionPolicy.objects.get(event_name="*").last_purged > 0
    assert AuditLog.objects.filter(action="retention.purge").exists()


def test_retention_purges_quarantined_payloads_and_sent_webhook_bodies_too(source):
    now = timezone.now()
    old, recent = now - timedelta(days=40), now - timedelta(days=2)
    for received_at in (old, recent):
        QuarantinedMessage.objects.create(
            source=source, received_at=received_at, reason="invalid message", message={"a": 1}
        )
    segment = Segment.objects.create(name="Hooked", definition={"all": []})
    for state in ("sent", "failed", "pending"):
        delivery = WebhookDelivery.objects.create(
            segment=segment, url="https://example.com/hook", payload={"email": "a@b.c"}, state=state
        )
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=old)
    WebhookDelivery.objects.create(
        segment=segment, url="https://example.com/hook", payload={}, state="sent"
    )
    RetentionPolicy.objects.create(event_name="*", days=30)
    assert services.retention_purge(batch_size=1) == 3
    assert list(QuarantinedMessage.objects.values_list("received_at", flat=True)) == [recent]
    # Pending work is kept; recent deliveries too.
    assert sorted(WebhookDelivery.objects.values_list("state", flat=True)) == ["pending", "sent"]
    assert set(
        AuditLog.objects.filter(action="retention.purge").values_list("resource", flat=True)
    ) == {"profiles.QuarantinedMessage", "segments.WebhookDelivery"}


def test_retention_with_no_policy_keeps_everything(make_person):
    make_person(events=4)
    assert services.retention_purge() == 0
    assert Event.objects.count() == 4


# --- audit -----------------------------------------------------------------------------------


def test_the_audit_log_records_who_viewed_a_profiles_consents_from_where(
    make_person, client, compliance
):
    person = make_person()
    client.force_login(compliance)
    client.get(f"/privacy/profiles/{person.profile.pk}/consents/", REMOTE_ADDR="198.51.100.9")
    row = AuditLog.objects.get(action="view", resource="consents")
    assert row.actor == compliance and row.ip == "198.51.100.9"
    assert row.profile_id == person.profile.pk


def test_audit_rows_are_append_only():
    row = audit_record(actor=None, action="x", resource="y")
    with pytest.raises(RuntimeError):
        row.delete()
    row.action = "z"
    with pytest.raises(RuntimeError):
        row.save()


def test_the_audit_api_filters_and_needs_the_audit_scope(api_client_with_scopes, client, marketer):
    audit_record(actor=None, action="view", resource="consents", profile_id=5)
    audit_record(actor=None, action="erase", resource="privacy", profile_id=6)
    api = api_client_with_scopes("audit:read")
    body = api.get("/api/v1/audit/?action=erase").json()
    assert [r["profile_id"] for r in body["results"]] == [6]
    assert api.get("/api/v1/audit/?profile_id=abc").status_code == 400
    assert api_client_with_scopes("privacy:read").get("/api/v1/audit/").status_code == 403
    client.force_login(marketer)
    assert client.get("/api/v1/audit/").status_code == 403
    assert client.get("/privacy/audit/").status_code == 403


def test_the_audit_log_exports_as_csv(client, compliance):
    audit_record(actor=None, action="erase", resource="privacy", resource_id=3)
    client.force_login(compliance)
    response = client.get("/privacy/audit/?action=erase&include_system=on&format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["time", "actor", "action"]
    assert [r[2] for r in rows[1:]] == ["erase"]


# --- pages and roles -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/privacy/", "/privacy/audit/", "/privacy/requests/{id}/"])
def test_privacy_pages_are_for_compliance_and_admin_only(
    client, marketer, compliance, admin_user, no_role_user, path
):
    request = services.privacy_request_create(
        regulation_type="ACCESS", subject={"email": "a@example.com"}
    )
    url = path.format(id=request.pk)
    for user, expected in (
        (marketer, 403),
        (no_role_user, 403),
        (compliance, 200),
        (admin_user, 200),
    ):
        client.force_login(user)
        assert client.get(url).status_code == expected, (user, url)
    client.logout()
    assert client.get(url).status_code == 302


def test_a_marketer_cannot_verify_or_process_a_request(client, marketer):
    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"email": "a@example.com"}
    )
    client.force_login(marketer)
    assert client.post(f"/privacy/requests/{request.pk}/verify/", {"note": "x"}).status_code == 403
    assert client.post(f"/privacy/requests/{request.pk}/process/").status_code == 403
    request.refresh_from_db()
    assert request.status == "NOT_VERIFIED"


def test_the_new_request_form_shows_errors_instead_of_failing(client, compliance):
    client.force_login(compliance)
    response = client.post(
        "/privacy/",
        {
            "regulation_type": "DELETE_ONLY",
            "regulation": "GDPR",
            "subject_kind": "email",
            "subject_value": "not-an-email",
        },
    )
    assert response.status_code == 200
    assert b"email is not an email address" in response.content
    assert not PrivacyRequest.objects.exists()
    response = client.post(
        "/privacy/",
        {
            "regulation_type": "RECTIFY",
            "regulation": "GDPR",
            "subject_kind": "user_id",
            "subject_value": "u1",
            "rectify_traits": "{nope",
        },
    )
    assert b"not valid JSON" in response.content


def test_compliance_creates_assigns_comments_and_verifies_from_the_console(
    client, compliance, django_capture_on_commit_callbacks
):
    client.force_login(compliance)
    response = client.post(
        "/privacy/",
        {
            "regulation_type": "SUPPRESS_ONLY",
            "regulation": "CCPA",
            "subject_kind": "email",
            "subject_value": "c@example.com",
        },
    )
    request = PrivacyRequest.objects.get()
    assert response["Location"] == f"/privacy/requests/{request.pk}/"
    assert request.status == "NOT_VERIFIED" and request.submitted_by == compliance
    client.post(f"/privacy/requests/{request.pk}/assign/", {"assignee": compliance.pk})
    client.post(f"/privacy/requests/{request.pk}/comment/", {"body": "Called the customer."})
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/privacy/requests/{request.pk}/verify/", {"note": "utility bill"})
    request.refresh_from_db()
    assert request.assigned_to == compliance
    assert request.comments.get().body == "Called the customer."
    assert request.status == "FINISHED"
    page = client.get(f"/privacy/requests/{request.pk}/").content.decode()
    assert "Called the customer." in page and "Finished" in page


# --- PII -------------------------------------------------------------------------------------


def test_marketers_see_pii_traits_masked_and_compliance_sees_them(marketer, compliance):
    traits = {"email": "jane.doe@example.com", "phone": "+15555550123", "plan": "pro"}
    masked = pii_for(marketer).traits(traits)
    assert masked["plan"] == "pro"
    assert "jane" not in masked["email"] and masked["email"].endswith(".com")
    assert masked["phone"].endswith("0123") and "555555" not in masked["phone"]
    assert pii_for(compliance).traits(traits) == traits
    template = Template(
        '{% load consent_pii %}{% mask_pii email "email" %}|{{ traits|mask_pii_traits:user }}'
    )
    out = template.render(Context({"email": traits["email"], "traits": traits, "user": marketer}))
    assert "jane.doe@example.com" not in out


def test_marketing_exports_pseudonymise_pii_consistently():
    # The segment CSV export (tests/segments/test_api.py) pseudonymises with this.
    first, second = pii_pseudonym("a@example.com"), pii_pseudonym("a@example.com")
    assert first == second != pii_pseudonym("b@example.com")
    assert "a@example.com" not in first
