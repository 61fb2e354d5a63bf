"""The pages: lists, forms (errors as form errors, never a 500), preview, results; roles."""

from __future__ import annotations

import json
import re

import pytest

from experiences.models import Experience, Placement
from experiences.selectors import experience_results
from experiences.services import decisions_take
from tests.experiences.conftest import HERO_SCHEMA, visitor

pytestmark = pytest.mark.django_db
TWO_VARIANTS = [
    {"name": "A", "weight": 1, "content": {"title": "A"}},
    {"name": "B", "weight": 1, "content": {"title": "B"}},
]

EXPERIENCE_FORM = {
    "name": "Spring",
    "status": "active",
    "priority": "10",
    "allocation": "split",
    "goal_event": "",
    "holdout_percent": "0",
    "audience": json.dumps({"trait": "plan", "op": "eq", "value": "pro"}),
    "page": "",
    "variants": json.dumps(
        [
            {"name": "A", "content": {"title": "Hi {{ profile.traits.nickname }}"}},
            {"name": "B", "content": {"title": "B"}},
        ]
    ),
}


def test_a_marketer_creates_a_placement_and_an_experience_through_the_pages(staff_client, marketer):
    client = staff_client(marketer)
    response = client.post(
        "/experiences/placements/new/",
        {
            "key": "home_hero",
            "name": "Home hero",
            "content_schema": json.dumps(HERO_SCHEMA),
            "default_content": json.dumps({"title": "Welcome"}),
        },
    )
    assert response.status_code == 302
    placement = Placement.objects.get()
    response = client.post("/experiences/new/", {**EXPERIENCE_FORM, "placement": str(placement.pk)})
    assert response.status_code == 302
    experience = Experience.objects.get()
    assert experience.audience == {"trait": "plan", "op": "eq", "value": "pro"}
    for url in (
        "/experiences/",
        "/experiences/placements/",
        f"/experiences/{experience.pk}/",
        f"/experiences/{experience.pk}/results/",
        f"/experiences/{experience.pk}/preview/",
    ):
        assert client.get(url).status_code == 200, url


def test_bad_input_is_a_form_error_not_a_500(staff_client, marketer, placement):
    client = staff_client(marketer)
    bad = {
        **EXPERIENCE_FORM,
        "placement": str(placement.pk),
        "variants": json.dumps([{"name": "A", "content": {"nope": 1}}]),
        "audience": "{not json",
    }
    response = client.post("/experiences/new/", bad)
    assert response.status_code == 400
    assert b"not valid JSON" in response.content
    bad["audience"] = ""
    response = client.post("/experiences/new/", bad)
    assert response.status_code == 400
    assert b"title" in response.content  # the schema's complaint, on the variants field
    assert not Experience.objects.exists()


def test_the_preview_shows_what_a_profile_would_see_without_recording(
    staff_client, marketer, make_experience
):
    experience = make_experience(
        audience={"trait": "plan", "op": "eq", "value": "pro"},
        variants=[{"name": "A", "content": {"title": "Hi {{ profile.traits.nickname }}"}}],
    )
    pro, _ = visitor(traits={"plan": "pro", "nickname": "<i>Bo</i>"})
    other, _ = visitor()
    client = staff_client(marketer)
    response = client.get(
        f"/experiences/{experience.pk}/preview/", {"profile": pro.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "Shown" in text and "Hi &amp;lt;i&amp;gt;Bo&amp;lt;/i&amp;gt;" in text
    assert "<html" not in text  # the htmx partial only
    response = client.get(f"/experiences/{experience.pk}/preview/", {"profile": other.pk})
    assert "Not shown" in response.content.decode()
    response = client.get(f"/experiences/{experience.pk}/preview/", {"profile": "abc"})
    assert response.status_code == 400
    assert not experience.decisions.exists()


def test_roles(staff_client, compliance, no_role_user, make_experience):
    experience = make_experience()
    reader = staff_client(compliance)
    assert reader.get("/experiences/").status_code == 200
    assert reader.get(f"/experiences/{experience.pk}/results/").status_code == 200
    assert reader.get("/experiences/new/").status_code == 403
    assert reader.get("/experiences/placements/new/").status_code == 403
    response = reader.post(f"/experiences/{experience.pk}/", {**EXPERIENCE_FORM})
    assert response.status_code == 403
    nobody = staff_client(no_role_user)
    for url in ("/experiences/", "/experiences/placements/", f"/experiences/{experience.pk}/"):
        assert nobody.get(url).status_code == 403


def test_the_results_page_passes_its_charts_data_as_json(staff_client, marketer, make_experience):
    experience = make_experience(allocation="split", variants=TWO_VARIANTS, holdout_percent=30)
    for _ in range(20):
        decisions_take(placement_keys=["home_hero"], profile=visitor()[0], page={})
    body = staff_client(marketer).get(f"/experiences/{experience.pk}/results/").content.decode()
    charts = {
        name: json.loads(
            re.search(rf'<script id="{name}-data" type="application/json">(.*?)</script>', body)[1]
        )
        for name in ("intervals", "rates", "impressions", "clicks")
    }
    found = experience_results(experience=experience)
    people = {arm["name"]: arm["assigned"] for arm in found["arms"]}
    assert charts["intervals"]["labels"] == [name for name, count in people.items() if count]
    assert [arm["label"] for arm in charts["rates"]["arms"]] == list(people)
    assert charts["impressions"]["labels"] == found["days"]
    # In percent, each rate inside its interval.
    intervals = charts["intervals"]
    for low, rate, high in zip(intervals["low"], intervals["rate"], intervals["high"], strict=True):
        assert 0 <= low <= rate <= high <= 100
    # Data, not code: the only scripts are the JSON blocks and the vendored files.
    assert re.findall(r"<script(?![^>]*(?:application/json|src=))", body) == []
