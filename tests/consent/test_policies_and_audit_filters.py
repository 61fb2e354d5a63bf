"""Compliance edits purposes and retention policies in the app (audited, with history); the
audit log's filters; an access request keeps its contact until the export is downloaded."""

import pytest

from access.models import AuditLog
from access.services import audit_record
from consent.models import Purpose, RetentionPolicy

pytestmark = pytest.mark.django_db


def test_compliance_edits_a_retention_policy_and_a_purpose_and_both_are_audited(
    staff_client, compliance
):
    client = staff_client(compliance)
    response = client.post(
        "/privacy/policies/retention/new/",
        {"event_name": "Page Viewed", "days": "90", "enabled": "on"},
    )
    assert response.status_code == 302
    policy = RetentionPolicy.objects.get(event_name="Page Viewed")
    client.post(
        f"/privacy/policies/retention/{policy.pk}/",
        {"event_name": "Page Viewed", "days": "30", "enabled": "on"},
    )
    policy.refresh_from_db()
    assert policy.days == 30
    purpose = Purpose.objects.order_by("code").first()
    client.post(
        f"/privacy/policies/purposes/{purpose.pk}/",
        {
            "code": purpose.code,
            "name": "Newsletters and offers",
            "description": purpose.description,
            "legal_basis": purpose.legal_basis,
        },
    )
    purpose.refresh_from_db()
    assert purpose.name == "Newsletters and offers"
    rows = AuditLog.objects.filter(resource__in=["retention", "purpose"]).order_by("id")
    assert [r.action for r in rows] == ["retention.create", "retention.update", "purpose.update"]
    assert rows[1].details["changes"] == {"days": [90, 30]} and rows[1].actor == compliance
    assert set(rows[2].details["changes"]) >= {"name"}
    history = client.get("/privacy/policies/").content.decode()
    assert "retention.update" in history and "90 → 30" in history


def test_a_retention_policy_of_zero_days_is_a_form_error(staff_client, compliance):
    response = staff_client(compliance).post(
        "/privacy/policies/retention/new/", {"event_name": "*", "days": "0"}
    )
    assert response.status_code == 400
    assert not RetentionPolicy.objects.exists()


@pytest.mark.parametrize("role", ["marketer", "no_role_user"])
def test_policies_are_refused_to_other_roles(staff_client, request, role):
    client = staff_client(request.getfixturevalue(role))
    assert client.get("/privacy/policies/").status_code == 403
    response = client.post("/privacy/policies/retention/new/", {"event_name": "*", "days": "5"})
    assert response.status_code == 403
    assert not RetentionPolicy.objects.exists()


def test_the_audit_log_hides_system_rows_by_default_and_lists_actions(staff_client, compliance):
    audit_record(actor=None, action="consent.signal", resource="consents", profile_id=1)
    audit_record(actor=compliance, action="erase", resource="privacy", resource_id=3)
    client = staff_client(compliance)
    page = client.get("/privacy/audit/").content.decode()
    assert "consent.signal</td>" not in page and "erase</td>" in page
    assert '<option value="consent.signal">' in page  # the action filter is a list
    shown = client.get("/privacy/audit/?include_system=on").content.decode()
    assert "consent.signal</td>" in shown


def test_a_finished_access_request_keeps_the_contact_until_its_export_is_downloaded(
    make_person, compliance, staff_client, settings, tmp_path
):
    from consent import services
    from consent.models import RequestStatus

    settings.MEDIA_ROOT = tmp_path
    person = make_person()
    access = services.privacy_request_create(
        regulation_type="ACCESS", subject={"email": person.email}, api_key=None
    )
    services.privacy_request_verify(request=access, actor=compliance, note="ok")
    access = services.privacy_request_process(request=access)
    assert access.status == RequestStatus.FINISHED and access.subject == {"email": person.email}
    client = staff_client(compliance)
    page = client.get(f"/privacy/requests/{access.pk}/").content.decode()
    assert person.email in page and "Kept until the export is downloaded" in page
    assert f'action="/privacy/requests/{access.pk}/assign/"' not in page  # finished
    download = client.get(f"/privacy/requests/{access.pk}/export/")
    assert download.status_code == 200
    access.refresh_from_db()
    assert access.subject == {} and access.subject_hashes
