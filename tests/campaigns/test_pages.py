"""Campaign pages: list with counts, the journey drawn as a flow, the deliveries log, the
editor's errors, the preview for a profile, activate/pause; who may see and do what."""

from __future__ import annotations

import json

import pytest

from access.models import AuditLog
from campaigns.models import Campaign, Channel, Delivery
from tests.campaigns.conftest import cart_reminder, delivery_make, person

pytestmark = pytest.mark.django_db


def _definition(body):
    return {key: body[key] for key in ("trigger", "entry", "goal", "steps") if key in body}


@pytest.fixture
def campaign(email_channel, make_campaign) -> Campaign:
    body = cart_reminder(email_channel)
    body["steps"].append(
        {
            "branch": {
                "if": {"trait": "vip", "op": "eq", "value": True},
                "then": [{"wait": {"until_hour": 9}}],
            }
        }
    )
    return make_campaign(body)


def test_the_list_shows_status_and_counts_in_a_fixed_number_of_queries(
    staff_client, marketer, campaign, django_assert_max_num_queries
):
    client = staff_client(marketer)
    with django_assert_max_num_queries(8):
        page = client.get("/campaigns/")
    assert page.status_code == 200
    assert b"Cart reminder" in page.content and b"active" in page.content


def test_the_campaign_page_draws_the_journey_and_logs_deliveries(
    staff_client, marketer, campaign, email_channel
):
    ann = person(email_address="ann@example.com")
    delivery_make(campaign, ann, email_channel, status="skipped", skip_reason="no_consent")
    page = staff_client(marketer).get(f"/campaigns/{campaign.pk}/").content.decode()
    assert "When someone does “Product Added”" in page
    assert "Wait 60 minutes" in page and "until 09:00 in the person&#x27;s time zone" in page
    assert "If People whose vip is true" in page or "If " in page
    assert "No consent" in page and "/steps/1" in page
    # The journey's own goal count is not the results' attributed conversions: it says so.
    assert "Reached the goal in the journey" in page and "Converted<" not in page
    assert f'href="/campaigns/{campaign.pk}/results/">Results</a></div>' in page


def _preview(client, campaign, profile) -> str:
    page = client.get(
        f"/campaigns/{campaign.pk}/preview/", {"profile": profile.pk, "step": "/steps/1"}
    )
    assert page.status_code == 200
    return page.content.decode()


def test_an_admin_previews_a_message_for_a_profile_escaped_in_a_sandbox(
    staff_client, admin_user, campaign
):
    ann = person(traits={"first_name": "<b>Ann</b>"})
    body = _preview(staff_client(admin_user), campaign, ann)
    assert "You left something" in body
    # The HTML part sits in a sandboxed iframe; the trait inside it is escaped twice over.
    assert "sandbox" in body and "&amp;lt;b&amp;gt;Ann" in body and "<b>Ann</b>" not in body
    assert AuditLog.objects.filter(profile_id=ann.pk, action="view").exists()


def test_a_marketer_previews_with_pii_traits_masked_as_on_the_profile_page(
    staff_client, marketer, campaign
):
    ann = person(traits={"first_name": "Annabelle"})
    body = _preview(staff_client(marketer), campaign, ann)
    assert "Annabelle" not in body and "A••••••••" in body


def test_the_editor_shows_errors_with_their_pointers(staff_client, marketer, email_channel):
    client = staff_client(marketer)
    assert client.get("/campaigns/new/").status_code == 200
    bad = cart_reminder(email_channel, steps=[{"wait": {"weeks": 1}}])
    page = client.post(
        "/campaigns/new/",
        {"name": "X", "kind": "marketing", "definition": json.dumps(_definition(bad))},
    )
    assert page.status_code == 200 and b"/steps/0/wait" in page.content
    assert not Campaign.objects.exists()
    good = client.post(
        "/campaigns/new/",
        {
            "name": "Y",
            "kind": "marketing",
            "definition": json.dumps(_definition(cart_reminder(email_channel))),
        },
    )
    campaign = Campaign.objects.get()
    assert good.status_code == 302 and campaign.status == "draft"
    client.post(f"/campaigns/{campaign.pk}/active/")
    campaign.refresh_from_db()
    assert campaign.status == "active"


def test_compliance_reads_the_pages_but_cannot_edit_or_activate(staff_client, compliance, campaign):
    client = staff_client(compliance)
    assert client.get("/campaigns/").status_code == 200
    assert client.get(f"/campaigns/{campaign.pk}/").status_code == 200
    assert client.get("/campaigns/new/").status_code == 403
    assert client.post(f"/campaigns/{campaign.pk}/edit/", {"name": "Z"}).status_code == 403
    assert client.post(f"/campaigns/{campaign.pk}/paused/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "active"


def test_staff_without_a_role_see_no_campaign_page(staff_client, no_role_user, campaign):
    client = staff_client(no_role_user)
    assert client.get("/campaigns/").status_code == 403
    assert client.get(f"/campaigns/{campaign.pk}/").status_code == 403


def test_the_profile_page_loads_the_persons_messages(
    staff_client, marketer, campaign, email_channel
):
    ann = person(email_address="ann@example.com")
    delivery_make(campaign, ann, email_channel, status="sent")
    client = staff_client(marketer)
    profile_page = client.get(f"/profiles/{ann.pk}/").content.decode()
    assert f'hx-get="/campaigns/profile/{ann.pk}/deliveries/"' in profile_page
    fragment = client.get(f"/campaigns/profile/{ann.pk}/deliveries/").content.decode()
    assert "Cart reminder" in fragment and "sent" in fragment


def test_a_test_send_goes_to_a_staff_address_and_records_no_delivery(
    staff_client, marketer, campaign, smtp
):
    ann = person(traits={"plan": "pro"})
    client = staff_client(marketer)
    url = f"/campaigns/{campaign.pk}/test-send/"
    fields = {"step": "/steps/1", "profile": ann.pk}
    sent = client.post(url, {**fields, "to": marketer.email}).content.decode()
    assert f"Test sent to {marketer.email}" in sent
    (mail,) = smtp.messages
    assert mail["To"] == marketer.email and mail["Subject"] == "[Test] You left something"
    assert not Delivery.objects.exists()

    refused = client.post(url, {**fields, "to": "someone@elsewhere.example"}).content.decode()
    assert "staff account" in refused and len(smtp.messages) == 1
    wrong_step = client.post(url, {**fields, "step": "/steps/0", "to": marketer.email})
    assert "not a send step" in wrong_step.content.decode()


def test_compliance_cannot_test_send(staff_client, compliance, campaign, smtp):
    ann = person()
    url = f"/campaigns/{campaign.pk}/test-send/"
    response = staff_client(compliance).post(
        url, {"step": "/steps/1", "profile": ann.pk, "to": compliance.email}
    )
    assert response.status_code == 403 and smtp.messages == []


def test_a_marketer_adds_a_webhook_channel_and_sees_its_secret_once(
    staff_client, marketer, settings
):
    settings.OUTBOUND_ALLOWED_HOSTS = []
    client = staff_client(marketer)
    refused = client.post(
        "/campaigns/channels/",
        {"kind": "webhook", "name": "Inside", "config": '{"url": "http://169.254.169.254/"}'},
    ).content.decode()
    assert "/config/url" in refused and not Channel.objects.exists()

    added = client.post(
        "/campaigns/channels/",
        {"kind": "webhook", "name": "CRM", "config": '{"url": "https://crm.example.com/hook"}'},
    ).content.decode()
    assert "whsec_" in added and "shown only this once" in added
    listing = client.get("/campaigns/channels/").content.decode()
    assert "CRM" in listing and "whsec_" not in listing


def test_compliance_sees_channels_and_dead_letters_but_changes_nothing(
    staff_client, compliance, campaign, email_channel
):
    delivery_make(campaign, person(), email_channel, status="failed", last_error="SMTP 550")
    client = staff_client(compliance)
    assert client.get("/campaigns/channels/").status_code == 200
    page = client.get("/campaigns/dead-letters/").content.decode()
    assert "SMTP 550" in page and "<button" not in page.split("<main", 1)[1]
    assert client.post("/campaigns/dead-letters/", {}).status_code == 403
    assert client.post("/campaigns/channels/", {"kind": "email"}).status_code == 403


def test_a_marketer_replays_a_failed_delivery_from_the_dead_letter_page(
    staff_client, marketer, campaign, email_channel, smtp, django_capture_on_commit_callbacks
):
    ann = person(email_address="ann@example.com")
    failed = delivery_make(campaign, ann, email_channel, status="failed", last_error="SMTP 451")
    with django_capture_on_commit_callbacks(execute=True):
        staff_client(marketer).post("/campaigns/dead-letters/", {"delivery": failed.pk})
    failed.refresh_from_db()
    assert failed.status == "sent" and len(smtp.to("ann@example.com")) == 1
