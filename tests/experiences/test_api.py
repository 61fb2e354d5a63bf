"""The management API: /api/v1/placements/ and /api/v1/experiences/, roles and scopes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.experiences.conftest import HERO_SCHEMA

pytestmark = pytest.mark.django_db

PLACEMENT = {
    "key": "home_hero",
    "name": "Home hero",
    "content_schema": HERO_SCHEMA,
    "default_content": {"title": "Welcome"},
}
EXPERIENCE = {
    "placement": "home_hero",
    "name": "Spring",
    "status": "active",
    "allocation": "split",
    "variants": [
        {"name": "A", "weight": 1, "content": {"title": "A"}},
        {"name": "B", "weight": 1, "content": {"title": "B"}},
    ],
    "page": [{"field": "utm_campaign", "op": "eq", "value": "spring"}],
}


def as_user(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_a_marketer_creates_a_placement_and_an_experience(marketer):
    api = as_user(marketer)
    response = api.post("/api/v1/placements/", PLACEMENT, format="json")
    assert response.status_code == 201, response.json()
    response = api.post("/api/v1/experiences/", EXPERIENCE, format="json")
    assert response.status_code == 201, response.json()
    experience = response.json()
    assert (experience["placement"], experience["allocation"]) == ("home_hero", "split")
    response = api.patch(f"/api/v1/experiences/{experience['id']}/", {"priority": 5}, format="json")
    assert response.json()["priority"] == 5
    listed = api.get("/api/v1/experiences/").json()["results"]
    assert [e["id"] for e in listed] == [experience["id"]]
    results = api.get(f"/api/v1/experiences/{experience['id']}/results/").json()
    assert [arm["name"] for arm in results["arms"]] == ["A", "B"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**EXPERIENCE, "placement": "nope"}, "placement"),
        ({**EXPERIENCE, "variants": [{"name": "A", "content": {"x": 1}}]}, "variants"),
        ({**EXPERIENCE, "audience": {"event": "Order Completed"}}, "audience"),
        ({**EXPERIENCE, "audience": {"trait": "plan", "op": "nope"}}, "audience"),
        ({**EXPERIENCE, "page": "not a list"}, "page"),
        ({**EXPERIENCE, "holdout_percent": 120}, "holdout_percent"),
        ({**EXPERIENCE, "allocation": "magic"}, "allocation"),
        (
            {**EXPERIENCE, "starts_at": "2030-01-02T00:00Z", "ends_at": "2030-01-01T00:00Z"},
            "ends_at",
        ),
    ],
)
def test_bad_experiences_are_400s_naming_the_field(admin_api, body, field):
    admin_api.post("/api/v1/placements/", PLACEMENT, format="json")
    response = admin_api.post("/api/v1/experiences/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**PLACEMENT, "content_schema": {"type": 5}}, "content_schema"),
        ({**PLACEMENT, "default_content": {"headline": "x"}}, "default_content"),
        ({**PLACEMENT, "key": "has space"}, "key"),
    ],
)
def test_bad_placements_are_400s_naming_the_field(admin_api, body, field):
    response = admin_api.post("/api/v1/placements/", body, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_a_key_another_placement_has_is_a_409_naming_it(admin_api):
    admin_api.post("/api/v1/placements/", PLACEMENT, format="json")
    response = admin_api.post("/api/v1/placements/", PLACEMENT, format="json")
    assert response.status_code == 409
    assert response.json() == {"key": ["a placement with key 'home_hero' exists"]}
    other = admin_api.post("/api/v1/placements/", {**PLACEMENT, "key": "cart"}, format="json")
    moved = admin_api.patch(
        f"/api/v1/placements/{other.json()['id']}/", {"key": "home_hero"}, format="json"
    )
    assert moved.status_code == 409 and "key" in moved.json()


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", 5), ("description", 0), ("key", 1), ("content_schema", None), ("content_schema", [])],
)
def test_placement_fields_take_only_their_json_type(admin_api, field, value):
    response = admin_api.post("/api/v1/placements/", {**PLACEMENT, field: value}, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_compliance_reads_but_does_not_write(compliance, admin_api):
    admin_api.post("/api/v1/placements/", PLACEMENT, format="json")
    api = as_user(compliance)
    assert api.get("/api/v1/placements/").status_code == 200
    assert api.get("/api/v1/experiences/").status_code == 200
    assert api.post("/api/v1/experiences/", EXPERIENCE, format="json").status_code == 403
    assert api.patch("/api/v1/placements/1/", {"name": "x"}, format="json").status_code == 403


def test_no_role_and_anonymous_are_refused(no_role_user):
    assert as_user(no_role_user).get("/api/v1/placements/").status_code == 403
    assert APIClient().get("/api/v1/experiences/").status_code in (401, 403)


def test_keys_need_the_experiences_scope(api_client_with_scopes):
    assert api_client_with_scopes("campaigns:write").get("/api/v1/placements/").status_code == 403
    reader = api_client_with_scopes("experiences:read")
    assert reader.get("/api/v1/placements/").status_code == 200
    assert reader.post("/api/v1/placements/", PLACEMENT, format="json").status_code == 403
    writer = api_client_with_scopes("experiences:write")
    assert writer.post("/api/v1/placements/", PLACEMENT, format="json").status_code == 201


def test_the_schema_tags_the_routes(admin_api):
    schema = admin_api.get("/api/schema/?format=json").json()
    assert schema["paths"]["/api/v1/experiences/"]["post"]["tags"] == ["experiences"]
