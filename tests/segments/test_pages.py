"""Segment pages: who may see and build; the live preview partial; actions."""

import json

import pytest

from segments import services
from segments.models import Segment

pytestmark = pytest.mark.django_db

GERMANS = {"trait": "country", "op": "eq", "value": "DE"}


@pytest.fixture
def segment(profile_maker):
    profile_maker(traits={"country": "DE", "name": "Anna"})
    profile_maker(traits={"country": "FR"})
    created = services.segment_create(name="Germans", definition=GERMANS)
    services.segment_refresh(segment=created)
    return created


@pytest.mark.parametrize("role", ["marketer", "compliance", "admin_user"])
def test_every_role_reads_the_list_and_the_segment_page(staff_client, role, request, segment):
    client = staff_client(request.getfixturevalue(role))
    assert "Germans" in client.get("/segments/").content.decode()
    page = client.get(f"/segments/{segment.pk}/").content.decode()
    assert "People whose country is “DE”" in page
    # Member names are PII: a marketer sees them masked (access.pii), the others in clear.
    assert ("Anna" in page) == (role != "marketer")
    explained = client.get(
        f"/segments/{segment.pk}/explain/?profile={segment.memberships.get().profile_id}"
    )
    assert "✓" in explained.content.decode()


def test_a_user_without_a_role_sees_no_segment_page(staff_client, no_role_user, segment):
    client = staff_client(no_role_user)
    for url in ("/segments/", f"/segments/{segment.pk}/", "/segments/new/", "/segments/models/"):
        assert client.get(url).status_code == 403


def test_compliance_cannot_build_preview_or_act(staff_client, compliance, segment):
    client = staff_client(compliance)
    assert client.get("/segments/new/").status_code == 403
    assert client.get(f"/segments/{segment.pk}/edit/").status_code == 403
    assert client.post("/segments/preview/", {"definition": json.dumps(GERMANS)}).status_code == 403
    assert client.post(f"/segments/{segment.pk}/archive/").status_code == 403
    assert client.post("/segments/models/train/", {"kind": "cluster"}).status_code == 403
    assert Segment.objects.get().status == "active"


def test_preview_partial_counts_and_points_at_invalid_nodes(staff_client, marketer, segment):
    client = staff_client(marketer)
    ok = client.post("/segments/preview/", {"definition": json.dumps(GERMANS)}).content.decode()
    assert "data-preview-count>1<" in ok and "••••" in ok and "Anna" not in ok
    bad = {"all": [GERMANS, {"trait": "x') OR 1=1 --", "op": "eq", "value": 1}]}
    page = client.post("/segments/preview/", {"definition": json.dumps(bad)}).content.decode()
    assert 'data-error-pointer="/all/1/trait"' in page
    assert (
        "not valid JSON" in client.post("/segments/preview/", {"definition": "{"}).content.decode()
    )


def test_builder_saves_and_refuses_bad_definitions_with_form_errors(
    staff_client, marketer, segment, django_capture_on_commit_callbacks
):
    client = staff_client(marketer)
    response = client.post(
        "/segments/new/",
        {
            "name": "Bad",
            "definition": json.dumps({"all": [{"trait": "a__b", "op": "eq", "value": 1}]}),
        },
    )
    assert response.status_code == 200
    assert "/all/0/trait" in response.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/segments/new/",
            {
                "name": "French",
                "definition": json.dumps({"trait": "country", "op": "eq", "value": "FR"}),
            },
        )
    created = Segment.objects.get(name="French")
    assert response.status_code == 302 and response["Location"] == f"/segments/{created.pk}/"
    created.refresh_from_db()
    assert created.size == 1


def test_actions_refresh_duplicate_archive_restore(staff_client, marketer, segment):
    client = staff_client(marketer)
    assert client.post(f"/segments/{segment.pk}/refresh/").status_code == 302
    client.post(f"/segments/{segment.pk}/duplicate/")
    assert Segment.objects.filter(name="Germans (copy)").exists()
    client.post(f"/segments/{segment.pk}/archive/")
    segment.refresh_from_db()
    assert segment.status == "archived"
    client.post(f"/segments/{segment.pk}/restore/")
    segment.refresh_from_db()
    assert segment.status == "active"
    assert client.post(f"/segments/{segment.pk}/explode/").status_code == 404


def test_event_property_vocabulary(staff_client, marketer, profile_maker):
    from tests.segments.conftest import NOW

    profile_maker(events=[("Product Viewed", NOW, {"category": "Shoes", "price": 3})])
    data = staff_client(marketer).get("/segments/properties/?event=Product+Viewed").json()
    assert data == {"category": "string", "price": "number"}
