"""Build the cart-reminder journey in a real browser, preview it for a profile, activate it,
send the events and see the delivery in the log (and the mail at a real SMTP server)."""

import json

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from tests.campaigns.conftest import (  # noqa: F401 - fixtures shared with tests/campaigns
    CART,
    _campaign_settings,
    email_channel,
    person,
    smtp,
    track,
)

pytestmark = pytest.mark.e2e


def test_build_preview_activate_and_see_the_delivery(
    page, live_server, marketer, login, shot, source, request
):
    sink, channel = request.getfixturevalue("smtp"), request.getfixturevalue("email_channel")
    # A trait that is not PII: marketers see PII traits masked in previews.
    ann = person(email_address="ann@example.com", traits={"favourite": "red shoes"})
    definition = {
        "trigger": {"event": CART},
        "entry": "once",
        "goal": {"event": "Order Completed", "within": {"days": 3}},
        "steps": [
            {
                "send": {
                    "channel": channel.pk,
                    "message": {
                        "subject": "Still thinking about the {{ profile.traits.favourite }}?",
                        "html": "<h1>Your {{ profile.traits.favourite | default: 'cart' }}</h1>"
                        "<p>They miss you.</p>",
                    },
                }
            }
        ],
    }
    login(marketer)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("#id_name", "Cart reminder")
    page.fill("#id_definition", json.dumps(definition, indent=2))
    page.click("button[type=submit]")
    page.wait_for_selector("text=Journey")
    campaign = Campaign.objects.get()

    page.fill("#preview-profile", str(ann.pk))
    page.click("#preview button[type=submit], form[hx-get] button[type=submit]")
    page.wait_for_selector("text=Still thinking about the red shoes?")
    heading = page.frame_locator("iframe.message-preview").locator("h1").inner_text()
    assert heading == "Your red shoes"
    shot("campaign-preview")
    page.click("text=Send test")
    page.wait_for_selector("text=Test sent to marketer@example.com")
    assert (
        sink.to("marketer@example.com")[0]["Subject"]
        == "[Test] Still thinking about the red shoes?"
    )

    page.click("text=Activate")
    page.wait_for_selector("text=is now active")
    track(source, ann, CART, at=timezone.now())

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.wait_for_selector("td >> text=sent")
    shot("campaign-deliveries")
    assert len(sink.to("ann@example.com")) == 1

    page.goto(f"{live_server.url}/campaigns/")
    page.wait_for_selector("td >> text=Cart reminder")
    shot("campaign-list")
    page.goto(f"{live_server.url}/campaigns/channels/")
    page.wait_for_selector("td >> text=Newsletter")
    shot("campaign-channels")
    page.goto(f"{live_server.url}/profiles/{ann.pk}/")
    page.wait_for_selector("#profile-deliveries >> text=Cart reminder")
    shot("profile-messages")


def test_the_editor_points_at_a_broken_node_and_the_preference_centre_saves(
    page, live_server, marketer, login, shot, source, request
):
    sink, channel = request.getfixturevalue("smtp"), request.getfixturevalue("email_channel")
    login(marketer)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("#id_name", "Broken")
    page.fill("#id_definition", json.dumps({"trigger": {"event": CART}, "steps": [{"wait": {}}]}))
    page.click("button[type=submit]")
    page.wait_for_selector('code:has-text("/steps/0/wait")')
    shot("campaign-editor-error")

    ann = person(email_address="ann@example.com")
    campaign = Campaign.objects.create(name="Hello", status="active")
    campaign.versions.create(
        number=1,
        definition={
            "trigger": {"event": CART},
            "steps": [
                {
                    "send": {
                        "channel": channel.pk,
                        "message": {"subject": "Hi", "text": "{{ unsubscribe_url }}"},
                    }
                }
            ],
        },
    )
    track(source, ann, CART, at=timezone.now())
    link = sink.to("ann@example.com")[0].get_body(("plain",)).get_content().strip()
    page.goto(link.replace("https://cdp.example.com", live_server.url))
    page.uncheck("input[value=email_marketing]")
    page.click("text=Save my choices")
    page.wait_for_selector("text=Saved")
    shot("preference-centre")
