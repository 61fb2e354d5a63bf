import pytest

from access.models import AuditLog
from profiles.models import Profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(db) -> Profile:
    return Profile.objects.create(traits={"email": "ann@example.org", "name": "Ann"})


def test_a_staff_view_of_a_profile_page_is_audited_by_id_without_pii(
    staff_client, marketer, person
):
    staff_client(marketer).get(f"/profiles/{person.pk}/", REMOTE_ADDR="198.51.100.7")
    row = AuditLog.objects.get(resource="profile")
    assert (row.action, row.profile_id, row.actor, row.ip) == (
        "view",
        person.pk,
        marketer,
        "198.51.100.7",
    )
    assert "ann@example.org" not in str(row.details)


def test_api_reads_and_trait_changes_are_audited_with_the_key(api_client_with_scopes, person):
    api = api_client_with_scopes("profiles:read", "profiles:write")
    api.get(f"/api/v1/profiles/{person.pk}/")
    api.patch(f"/api/v1/profiles/{person.pk}/", {"traits": {"plan": "pro"}}, format="json")
    rows = list(AuditLog.objects.filter(resource="profile").order_by("id"))
    assert [r.action for r in rows] == ["view", "change"]
    assert all(r.actor_label.startswith("api-key:") for r in rows)


def test_a_refused_request_writes_no_audit_row(staff_client, no_role_user, person):
    staff_client(no_role_user).get(f"/profiles/{person.pk}/")
    assert not AuditLog.objects.filter(resource="profile").exists()
