"""Campaigns and channels API: the issue's forms, 400s that point at the node, versions,
cursor pages of deliveries, the webhook secret shown once, roles and key scopes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign, CampaignVersion, Channel
from tests.campaigns.conftest import cart_reminder, delivery_make, person

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(marketer) -> APIClient:
    client = APIClient()
    client.force_authenticate(marketer)
    return client


def test_a_marketer_creates_reads_edits_and_activates_a_campaign(api, email_channel):
    body = cart_reminder(email_channel, status="draft")
    created = api.post("/api/v1/campaigns/", body, format="json")
    assert created.status_code == 201, created.data
    data = created.json()
    assert data["version"] == 1 and data["status"] == "draft"
    assert data["trigger"] == body["trigger"] and data["steps"] == body["steps"]
    assert data["stats"]["entered"] == 0

    url = f"/api/v1/campaigns/{data['id']}/"
    assert api.post(url + "activate/").json()["status"] == "active"
    patched = api.patch(url, {"entry": "every_time", "name": "Cart v2"}, format="json").json()
    assert (patched["version"], patched["entry"], patched["name"]) == (2, "every_time", "Cart v2")
    assert api.post(url + "pause/").json()["status"] == "paused"
    assert api.get("/api/v1/campaigns/").json()["results"][0]["version"] == 2


def test_the_goal_and_the_cap_are_removed_with_null(api, email_channel, make_campaign):
    campaign = make_campaign(cart_reminder(email_channel, frequency_cap={"messages": 1, "days": 2}))
    response = api.patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"goal": None, "frequency_cap": None}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["goal"] is None and response.json()["frequency_cap"] is None


@pytest.mark.parametrize(
    ("change", "key", "pointer"),
    [
        ({"trigger": {"event": ""}}, "trigger", "/trigger"),
        ({"trigger": {"segment": 999}}, "trigger", "/trigger/segment"),
        (
            {"trigger": {"event": "X", "where": [{"property": "a.__b", "op": "eq", "value": 1}]}},
            "trigger",
            "/trigger/where/0/property",
        ),
        ({"entry": "twice"}, "entry", "/entry"),
        ({"steps": [{"wait": {"weeks": 2}}]}, "steps", "/steps/0/wait"),
        (
            {"steps": [{"branch": {"if": {"trait": "vip", "op": "between", "value": 3}}}]},
            "steps",
            "/steps/0/branch/if",
        ),
        ({"steps": [{"send": {"channel": 999, "message": {}}}]}, "steps", "/steps/0/send/channel"),
    ],
)
def test_an_invalid_definition_is_a_400_pointing_at_the_node(
    api, email_channel, change, key, pointer
):
    response = api.post("/api/v1/campaigns/", cart_reminder(email_channel, **change), format="json")
    assert response.status_code == 400
    assert pointer in [problem["pointer"] for problem in response.json()[key]], response.json()
    assert not Campaign.objects.exists()


@pytest.mark.parametrize(
    ("field", "template"),
    [
        ("subject", "{% if %}"),
        ("html", "{{ profile.traits.name | no_such_filter }}"),
        ("text", "{% include 'secrets.txt' %}"),
    ],
)
def test_a_template_that_does_not_render_is_a_400_on_save(api, email_channel, field, template):
    body = cart_reminder(email_channel)
    body["steps"][1]["send"]["message"][field] = template
    response = api.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400
    (problem,) = response.json()["steps"]
    assert problem["pointer"] == f"/steps/1/send/message/{field}"


def test_an_invalid_edit_keeps_the_current_version(api, email_channel, make_campaign):
    campaign = make_campaign(cart_reminder(email_channel))
    response = api.patch(
        f"/api/v1/campaigns/{campaign.pk}/", {"steps": [{"wait": {}}]}, format="json"
    )
    assert response.status_code == 400
    assert CampaignVersion.objects.filter(campaign=campaign).count() == 1


def test_an_archived_campaign_cannot_be_activated(api, email_channel, make_campaign):
    campaign = make_campaign(cart_reminder(email_channel))
    assert api.patch(f"/api/v1/campaigns/{campaign.pk}/", {"status": "archived"}).status_code == 200
    response = api.post(f"/api/v1/campaigns/{campaign.pk}/activate/")
    assert response.status_code == 400 and "archived" in response.json()["status"][0]


def test_deliveries_come_in_cursor_pages_per_campaign_and_per_profile(
    api, email_channel, make_campaign, django_assert_max_num_queries
):
    campaign = make_campaign(cart_reminder(email_channel))
    ann = person(email_address="ann@example.com")
    for n in range(5):
        delivery_make(campaign, ann, email_channel, number=n + 1)
    with django_assert_max_num_queries(4):
        page = api.get(f"/api/v1/campaigns/{campaign.pk}/deliveries/?limit=3").json()
    assert len(page["results"]) == 3 and page["next"]
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 2 and rest["next"] is None
    mine = api.get(f"/api/v1/profiles/{ann.pk}/deliveries/").json()["results"]
    assert len(mine) == 5 and mine[0]["status"] == "queued" and mine[0]["channel_kind"] == "email"
    assert api.get("/api/v1/profiles/999999/deliveries/").status_code == 404


def test_a_webhook_channel_shows_its_signing_secret_once(api):
    created = api.post(
        "/api/v1/channels/",
        {"kind": "webhook", "name": "CRM", "config": {"url": "https://crm.example.com/hook"}},
        format="json",
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("whsec_")
    channel_id = created.json()["channel"]["id"]
    assert "secret" not in api.get(f"/api/v1/channels/{channel_id}/").json()
    assert secret not in str(api.get("/api/v1/channels/").json())
    assert secret not in str(Channel.objects.values())
    rotated = api.post(f"/api/v1/channels/{channel_id}/rotate-secret/").json()["secret"]
    assert rotated.startswith("whsec_") and rotated != secret


@pytest.mark.parametrize(
    ("body", "key", "pointer"),
    [
        (
            {"kind": "email", "name": "E", "config": {"from": "not an address"}},
            "config",
            "/config/from",
        ),
        ({"kind": "email", "name": "E", "config": {}}, "config", "/config"),
        ({"kind": "webhook", "name": "W", "config": {"url": "ftp://x"}}, "config", "/config/url"),
    ],
)
def test_an_invalid_channel_config_is_a_400_naming_the_field(api, body, key, pointer):
    response = api.post("/api/v1/channels/", body, format="json")
    assert response.status_code == 400
    assert response.json()[key][0]["pointer"] == pointer


# --- who may do what -------------------------------------------------------------------------


def test_compliance_reads_but_cannot_write(staff_client, compliance, email_channel, make_campaign):
    campaign = make_campaign(cart_reminder(email_channel))
    client = APIClient()
    client.force_authenticate(compliance)
    assert client.get("/api/v1/campaigns/").status_code == 200
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/deliveries/").status_code == 200
    assert client.get("/api/v1/channels/").status_code == 200
    assert client.post(f"/api/v1/campaigns/{campaign.pk}/pause/").status_code == 403
    assert (
        client.post("/api/v1/campaigns/", cart_reminder(email_channel), format="json").status_code
        == 403
    )
    assert client.post("/api/v1/channels/", {"kind": "email"}, format="json").status_code == 403


def test_staff_without_a_role_get_nothing(no_role_user, email_channel):
    client = APIClient()
    client.force_authenticate(no_role_user)
    assert client.get("/api/v1/campaigns/").status_code == 403
    assert client.get("/api/v1/channels/").status_code == 403


def test_admins_build_campaigns(admin_api, email_channel):
    response = admin_api.post("/api/v1/campaigns/", cart_reminder(email_channel), format="json")
    assert response.status_code == 201


def test_keys_need_the_campaigns_scopes(api_client_with_scopes, email_channel):
    reader = api_client_with_scopes("campaigns:read")
    writer = api_client_with_scopes("campaigns:write")
    other = api_client_with_scopes("segments:read", "segments:write", "profiles:read")
    body = cart_reminder(email_channel)
    assert reader.get("/api/v1/campaigns/").status_code == 200
    assert reader.post("/api/v1/campaigns/", body, format="json").status_code == 403
    assert writer.post("/api/v1/campaigns/", body, format="json").status_code == 201
    assert other.get("/api/v1/campaigns/").status_code == 403
    assert other.get("/api/v1/channels/").status_code == 403
    assert APIClient().get("/api/v1/campaigns/").status_code in (401, 403)
