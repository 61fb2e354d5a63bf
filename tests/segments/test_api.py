"""Segment API: CRUD, preview, members, export, profile segments; invalid and hostile
definitions refused with a 400 pointing at the node; roles and key scopes."""

import csv
import io

import pytest
from rest_framework.test import APIClient

from access.models import AuditLog
from access.pii import pii_pseudonym
from segments.models import Segment
from tests.segments.conftest import NOW

pytestmark = pytest.mark.django_db

GERMANS = {"trait": "country", "op": "eq", "value": "DE"}


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.force_authenticate(marketer)
    return client


@pytest.fixture
def people(profile_maker):
    return [
        profile_maker(
            traits={"country": "DE", "name": f"p{i}"}, last_seen=NOW, identifiers=["email"]
        )
        for i in range(3)
    ] + [profile_maker(traits={"country": "FR"})]


def test_create_refreshes_membership_and_lists_members_with_a_cursor(
    api, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/segments/", {"name": "Germans", "definition": GERMANS}, format="json"
        )
    assert response.status_code == 201, response.data
    body = response.json()
    assert body["description_in_words"] == "People whose country is “DE”"
    segment_id = body["id"]
    assert api.get(f"/api/v1/segments/{segment_id}/").json()["size"] == 3
    page = api.get(f"/api/v1/segments/{segment_id}/members/?limit=2").json()
    assert len(page["results"]) == 2 and page["next"]
    rest = api.get(page["next"]).json()
    ids = {p["id"] for p in page["results"] + rest["results"]}
    assert ids == {p.pk for p in people[:3]} and rest["next"] is None
    assert page["results"][0]["identities"][0]["kind"] == "email"


def test_members_cost_the_same_queries_for_one_member_or_three(
    api, people, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with django_capture_on_commit_callbacks(execute=True):
        segment_id = api.post(
            "/api/v1/segments/", {"name": "Germans", "definition": GERMANS}, format="json"
        ).json()["id"]
    counts = []
    for limit in (1, 3):
        with CaptureQueriesContext(connection) as queries:
            page = api.get(f"/api/v1/segments/{segment_id}/members/?limit={limit}").json()
        assert len(page["results"]) == limit
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_preview_counts_an_unsaved_definition_and_samples(api, people):
    response = api.post(
        "/api/v1/segments/preview/", {"definition": GERMANS, "sample_size": 2}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert len(response.json()["sample"]) == 2


def test_update_archive_and_list(api, people, django_capture_on_commit_callbacks):
    segment = Segment.objects.create(name="x", definition=GERMANS)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch(
            f"/api/v1/segments/{segment.pk}/",
            {"definition": {"trait": "country", "op": "eq", "value": "FR"}, "name": "French"},
            format="json",
        )
    assert response.status_code == 200
    assert response.json()["name"] == "French" and response.json()["size"] == 0
    segment.refresh_from_db()
    assert segment.size == 1
    assert api.post(f"/api/v1/segments/{segment.pk}/archive/").json()["status"] == "archived"
    assert api.get("/api/v1/segments/").json()["results"] == []
    assert len(api.get("/api/v1/segments/?archived=true").json()["results"]) == 1


def test_profile_segments_and_explanation(api, people, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        segment_id = api.post(
            "/api/v1/segments/", {"name": "Germans", "definition": GERMANS}, format="json"
        ).json()["id"]
    rows = api.get(f"/api/v1/profiles/{people[0].pk}/segments/").json()["results"]
    assert [r["name"] for r in rows] == ["Germans"]
    assert api.get(f"/api/v1/profiles/{people[3].pk}/segments/").json()["results"] == []
    why = api.get(f"/api/v1/segments/{segment_id}/explain/{people[3].pk}/").json()
    assert why["member"] is False and why["explanation"]["detail"] == "value: 'FR'"


def test_csv_export_pseudonymised_hides_identifiers(
    api, admin_user, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        segment_id = api.post(
            "/api/v1/segments/", {"name": "Germans", "definition": GERMANS}, format="json"
        ).json()["id"]
    admin_api = APIClient()
    admin_api.force_authenticate(admin_user)
    plain = admin_api.get(f"/api/v1/segments/{segment_id}/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(plain.streaming_content).decode())))
    assert {r["email"] for r in rows} == {f"email-{p.pk}@example.com" for p in people[:3]}
    # A marketer's role may not see PII: the file is pseudonymised whatever was asked.
    marketer_file = b"".join(api.get(f"/api/v1/segments/{segment_id}/export.csv").streaming_content)
    assert b"@example.com" not in marketer_file
    assert AuditLog.objects.filter(action="export", resource="segment").count() == 2
    pseudo = api.get(f"/api/v1/segments/{segment_id}/export.csv?pseudonymised=true")
    text = b"".join(pseudo.streaming_content).decode()
    assert "@example.com" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    # The same keyed pseudonym as every other marketing export (access.pii), so files join.
    assert {r["email"] for r in rows} == {
        pii_pseudonym(f"email-{p.pk}@example.com") for p in people[:3]
    }
    assert {r["profile_id"] for r in rows} == {pii_pseudonym(p.pk) for p in people[:3]}


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        ({"all": [GERMANS, {"trait": "x') OR 1=1 --", "op": "eq", "value": 1}]}, "/all/1/trait"),
        ({"all": [{"trait": "traits__country", "op": "eq", "value": "DE"}]}, "/all/0/trait"),
        ({"any": [{"trait": "a.b__contains", "op": "eq", "value": 1}]}, "/any/0/trait"),
        (
            {"all": [{"trait": "country", "op": "eq; DROP TABLE profiles_profile", "value": 1}]},
            "/all/0/op",
        ),
        ({"all": [{"trait": "country", "op": "eq", "value": {"$ne": None}}]}, "/all/0/value"),
        ({"all": [{"trait": "country", "op": "gt", "value": "1 OR 1=1"}]}, "/all/0"),
        (
            {"event": "X", "where": [{"property": "a'; --", "op": "eq", "value": 1}]},
            "/where/0/property",
        ),
        ({"event": "X", "where": [{"property": "a", "op": "__gt", "value": 1}]}, "/where/0/op"),
        ({"computed": "revenue; DELETE", "op": "gt", "value": 1}, "/computed"),
        ({"computed": "revenue", "op": "before", "value": "2026-01-01"}, ""),
        ({"has_identifier": "email' OR '1'='1"}, "/has_identifier"),
        ({"all": [{"segment": 999999}]}, "/all/0"),
        ({"all": [{"consent": "no_such_purpose"}]}, "/all/0"),
        ({"all": [GERMANS], "sql": "SELECT 1"}, ""),
        ("SELECT * FROM profiles_profile", ""),
    ],
)
def test_invalid_or_hostile_definitions_get_a_400_pointing_at_the_node(api, definition, pointer):
    for url, body in (
        ("/api/v1/segments/", {"name": "bad", "definition": definition}),
        ("/api/v1/segments/preview/", {"definition": definition}),
    ):
        response = api.post(url, body, format="json")
        assert response.status_code == 400, response.content
        errors = response.json()["definition"]
        assert pointer in [e["pointer"] for e in errors], errors
    assert not Segment.objects.exists()


def test_a_nul_in_a_definition_is_refused_by_the_parser_saying_where(api):
    # PostgreSQL cannot hold NUL: the API's JSON parser refuses it before validation runs.
    definition = {"all": [GERMANS, {"event": "X\u0000", "within": {"days": 7}}]}
    for url, body in (
        ("/api/v1/segments/", {"name": "bad", "definition": definition}),
        ("/api/v1/segments/preview/", {"definition": definition}),
    ):
        response = api.post(url, body, format="json")
        assert response.status_code == 400, response.content
        assert "NUL" in response.json()["detail"]
        assert response.json()["detail"].endswith("at /definition/all/1/event.")
    assert not Segment.objects.exists()


def test_a_segment_cycle_is_refused(api, django_capture_on_commit_callbacks):
    a = api.post("/api/v1/segments/", {"name": "a", "definition": GERMANS}, format="json").json()[
        "id"
    ]
    b = api.post(
        "/api/v1/segments/", {"name": "b", "definition": {"segment": a}}, format="json"
    ).json()["id"]
    response = api.patch(
        f"/api/v1/segments/{a}/", {"definition": {"any": [GERMANS, {"segment": b}]}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["definition"][0]["pointer"] == "/any/1"
    assert "cycle" in response.json()["definition"][0]["message"]
    response = api.patch(f"/api/v1/segments/{a}/", {"definition": {"segment": a}}, format="json")
    assert response.status_code == 400


@pytest.mark.parametrize("role", ["marketer", "admin_user"])
def test_marketers_and_admins_build_segments(staff_client, role, request):
    client = staff_client(request.getfixturevalue(role))
    response = client.post(
        "/api/v1/segments/", {"name": "s", "definition": GERMANS}, content_type="application/json"
    )
    assert response.status_code == 201


def test_compliance_reads_but_cannot_build(staff_client, compliance):
    segment = Segment.objects.create(name="x", definition=GERMANS)
    client = staff_client(compliance)
    assert client.get("/api/v1/segments/").status_code == 200
    assert client.get(f"/api/v1/segments/{segment.pk}/members/").status_code == 200
    assert (
        client.post(
            "/api/v1/segments/",
            {"name": "s", "definition": GERMANS},
            content_type="application/json",
        ).status_code
        == 403
    )
    assert (
        client.post(
            "/api/v1/segments/preview/", {"definition": GERMANS}, content_type="application/json"
        ).status_code
        == 403
    )
    assert (
        client.patch(
            f"/api/v1/segments/{segment.pk}/", {"name": "y"}, content_type="application/json"
        ).status_code
        == 403
    )


def test_users_without_a_role_and_anonymous_callers_are_refused(staff_client, no_role_user, client):
    assert client.get("/api/v1/segments/").status_code in (401, 403)
    assert staff_client(no_role_user).get("/api/v1/segments/").status_code == 403


def test_keys_need_the_segments_scope(api_client_with_scopes, people):
    segment = Segment.objects.create(name="x", definition=GERMANS)
    reader = api_client_with_scopes("segments:read")
    assert reader.get("/api/v1/segments/").status_code == 200
    assert reader.get(f"/api/v1/profiles/{people[0].pk}/segments/").status_code == 200
    assert (
        reader.post(
            "/api/v1/segments/", {"name": "s", "definition": GERMANS}, format="json"
        ).status_code
        == 403
    )
    writer = api_client_with_scopes("segments:read", "segments:write")
    assert (
        writer.post(
            "/api/v1/segments/", {"name": "s", "definition": GERMANS}, format="json"
        ).status_code
        == 201
    )
    other = api_client_with_scopes("profiles:read", "profiles:write")
    assert other.get("/api/v1/segments/").status_code == 403
    assert other.get(f"/api/v1/segments/{segment.pk}/members/").status_code == 403
    assert (
        other.post("/api/v1/segments/preview/", {"definition": GERMANS}, format="json").status_code
        == 403
    )
