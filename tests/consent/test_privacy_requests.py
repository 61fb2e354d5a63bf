import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from access.models import AuditLog
from consent import services
from consent.models import PrivacyRequest, RequestStatus
from profiles.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def submit(api, body, capture):
    with capture(execute=True):
        return api.post("/api/v1/privacy-requests/", body, format="json")


def test_a_crm_submits_an_erasure_and_follows_it_to_finished(
    make_person, api_client_with_scopes, django_capture_on_commit_callbacks
):
    person = make_person()
    api = api_client_with_scopes("privacy:write", "privacy:read")
    response = submit(
        api,
        {"regulation_type": "DELETE_ONLY", "subject": {"email": person.email}},
        django_capture_on_commit_callbacks,
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert {"id", "status", "due_at"} <= set(body)
    followed = api.get(f"/api/v1/privacy-requests/{body['id']}/").json()
    assert followed["status"] == "FINISHED"
    assert followed["verification"]["clean"] is True
    assert not Profile.objects.filter(pk=person.profile.pk).exists()


def test_a_key_request_counts_as_verified_and_gets_the_gdpr_due_date(
    make_person, api_client_with_scopes
):
    api = api_client_with_scopes("privacy:write")
    before = timezone.now()
    response = api.post(
        "/api/v1/privacy-requests/",
        {"regulation_type": "ACCESS", "regulation": "CCPA", "subject": {"user_id": "u-1"}},
        format="json",
    )
    assert response.status_code == 201
    request = PrivacyRequest.objects.get(pk=response.json()["id"])
    assert request.verified_at is not None and request.status == RequestStatus.INITIALIZED
    assert before + timedelta(days=45) <= request.due_at <= timezone.now() + timedelta(days=45)


@pytest.mark.parametrize(
    "body, field",
    [
        ({"subject": {"email": "a@example.com"}}, "regulation_type"),
        (
            {"regulation_type": "FORGET_ME", "subject": {"email": "a@example.com"}},
            "regulation_type",
        ),
        ({"regulation_type": "DELETE_ONLY"}, "subject"),
        ({"regulation_type": "DELETE_ONLY", "subject": {}}, "subject"),
        ({"regulation_type": "DELETE_ONLY", "subject": {"email": "nope"}}, "subject"),
        ({"regulation_type": "DELETE_ONLY", "subject": {"ssn": "123"}}, "subject"),
        ({"regulation_type": "DELETE_ONLY", "subject": "a@example.com"}, "subject"),
        ({"regulation_type": "RECTIFY", "subject": {"user_id": "u"}}, "changes"),
        (
            {"regulation_type": "DELETE_ONLY", "subject": {"user_id": "u"}, "regulation": "LGPD"},
            "regulation",
        ),
    ],
)
def test_bad_privacy_requests_get_a_400_naming_the_field(api_client_with_scopes, body, field):
    response = api_client_with_scopes("privacy:write").post(
        "/api/v1/privacy-requests/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert field in response.json()


def test_marketers_and_keys_without_the_privacy_scope_are_refused(
    client, marketer, api_client_with_scopes
):
    request = services.privacy_request_create(
        regulation_type="ACCESS", subject={"email": "a@example.com"}
    )
    body = {"regulation_type": "ACCESS", "subject": {"email": "a@example.com"}}
    client.force_login(marketer)
    assert client.get("/api/v1/privacy-requests/").status_code == 403
    assert client.get(f"/api/v1/privacy-requests/{request.pk}/").status_code == 403
    assert (
        client.post("/api/v1/privacy-requests/", body, content_type="application/json").status_code
        == 403
    )
    key = api_client_with_scopes("profiles:read", "profiles:write", "consents:write")
    assert key.get(f"/api/v1/privacy-requests/{request.pk}/").status_code == 403
    assert key.post("/api/v1/privacy-requests/", body, format="json").status_code == 403
    read_only = api_client_with_scopes("privacy:read")
    assert read_only.post("/api/v1/privacy-requests/", body, format="json").status_code == 403
    assert read_only.get(f"/api/v1/privacy-requests/{request.pk}/").status_code == 200


def test_compliance_staff_list_requests_with_a_fixed_number_of_queries(
    client, compliance, django_assert_max_num_queries
):
    for i in range(5):
        services.privacy_request_create(
            regulation_type="ACCESS", subject={"email": f"p{i}@example.com"}
        )
    client.force_login(compliance)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/privacy-requests/?status=open")
    assert response.status_code == 200
    assert response.json()["count"] == 5


def test_a_staff_request_waits_for_verification_then_the_command_processes_it(
    make_person, compliance, capsys
):
    person = make_person()
    request = services.privacy_request_create(
        regulation_type="SUPPRESS_ONLY",
        subject={"user_id": person.user_id},
        submitted_by=compliance,
    )
    assert request.status == RequestStatus.NOT_VERIFIED
    call_command("process_privacy_requests")
    request.refresh_from_db()
    assert request.status == RequestStatus.NOT_VERIFIED  # not run before verification
    services.privacy_request_verify(request=request, actor=compliance, note="called back")
    call_command("process_privacy_requests")
    request.refresh_from_db()
    assert request.status == RequestStatus.FINISHED
    assert request.subject == {} and request.subject_hashes["user_id"]
    assert "1 request(s) processed" in capsys.readouterr().out


def test_the_command_refuses_a_bad_limit():
    with pytest.raises(CommandError, match="--limit"):
        call_command("process_privacy_requests", "--limit", "0")


def test_an_access_export_holds_traits_identities_events_and_consents(
    make_person, client, compliance, marketer
):
    person = make_person(events=5)
    other = make_person(email="other@example.com", user_id="user-other-1", phone="+14155550199")
    services.consent_record(profile=person.profile, purpose="push", granted=False, source="api")
    request = services.privacy_request_create(
        regulation_type="ACCESS", subject={"phone": "(415) 555-0123"}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="id card")
    request = services.privacy_request_process(request=request)
    assert request.status == RequestStatus.FINISHED and request.progress == 100

    client.force_login(compliance)
    response = client.get(f"/privacy/requests/{request.pk}/export/")
    assert response.status_code == 200
    data = json.loads(b"".join(response.streaming_content))
    assert [p["id"] for p in data["profiles"]] == [person.profile.pk]
    assert data["profiles"][0]["traits"]["email"] == person.email
    assert len(data["related"]["profiles.Event.profile"]) == 5
    assert {i["kind"] for i in data["related"]["identity.Identity.profile"]} >= {"email", "user_id"}
    assert data["related"]["consent.ConsentRecord.profile"][0]["granted"] is False
    assert "other@example.com" not in json.dumps(data)
    assert other.profile.pk not in [p["id"] for p in data["profiles"]]
    assert AuditLog.objects.filter(action="export.download", resource_id=str(request.pk)).exists()

    client.force_login(marketer)
    assert client.get(f"/privacy/requests/{request.pk}/export/").status_code == 403


def test_an_erasure_deletes_the_earlier_export_of_the_same_subject(
    make_person, compliance, settings
):
    person = make_person()
    access = services.privacy_request_create(
        regulation_type="ACCESS", subject={"email": person.email}, api_key=None
    )
    services.privacy_request_verify(request=access, actor=compliance, note="ok")
    access = services.privacy_request_process(request=access)
    path = Path(settings.MEDIA_ROOT) / access.export_file
    assert path.exists()
    erase = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"user_id": person.user_id}
    )
    services.privacy_request_verify(request=erase, actor=compliance, note="ok")
    erase = services.privacy_request_process(request=erase)
    assert erase.status == RequestStatus.FINISHED, erase.verification
    assert not path.exists()
    access.refresh_from_db()
    assert access.export_file == ""


@pytest.mark.django_db(transaction=True)
def test_rectify_sets_the_traits_and_keeps_only_their_names(make_person, django_user_model):
    """Outside any transaction, as a worker runs it (a test transaction once hid a failure).
    No role fixture: the roles' groups are gone once an earlier transactional test flushed."""
    officer = django_user_model.objects.create(username="officer")
    person = make_person()
    request = services.privacy_request_create(
        regulation_type="RECTIFY",
        subject={"email": person.email},
        changes={"traits": {"name": "Jane Smith"}},
    )
    services.privacy_request_verify(request=request, actor=officer, note="ok")
    request = services.privacy_request_process(request=request)
    assert request.status == RequestStatus.FINISHED, request.error
    person.profile.refresh_from_db()
    assert person.profile.traits["name"] == "Jane Smith"
    assert request.changes == {"traits": ["name"]}


def test_a_request_is_processed_once_even_if_queued_twice(make_person, compliance):
    person = make_person()
    request = services.privacy_request_create(
        regulation_type="SUPPRESS_ONLY", subject={"email": person.email}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    first = services.privacy_request_process(request=request)
    finished_at = first.finished_at
    second = services.privacy_request_process(request=PrivacyRequest.objects.get(pk=request.pk))
    assert second.finished_at == finished_at


def test_a_cancelled_request_never_runs(compliance):
    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"email": "x@example.com"}
    )
    services.privacy_request_cancel(request=request, actor=compliance)
    with pytest.raises(services.PrivacyRequestError):
        services.privacy_request_verify(request=request, actor=compliance, note="late")
    request.refresh_from_db()
    assert request.status == RequestStatus.CANCELLED and request.subject == {}
