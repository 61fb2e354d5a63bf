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
    ann = person(email_address="ann@example.com", traits={"first_name": "Ann"})
    definition = {
        "trigger": {"event": CART},
        "entry": "once",
        "goal": {"event": "Order Completed", "within": {"days": 3}},
        "steps": [
            {
                "send": {
                    "channel": channel.pk,
                    "message": {
                        "subject": "Still thinking about it, {{ profile.traits.first_name }}?",
                        "html": "<h1>Hi {{ profile.traits.first_name | default: 'there' }}</h1>"
                        "<p>Your cart misses you.</p>",
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
    page.wait_for_selector("text=Still thinking about it, Ann?")
    assert "Hi Ann" in page.frame_locator("iframe.message-preview").locator("h1").inner_text()
    shot("campaign-preview")

    page.click("text=Activate")
    page.wait_for_selector("text=is now active")
    track(source, ann, CART, at=timezone.now())

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.wait_for_selector("td >> text=sent")
    shot("campaign-deliveries")
    assert len(sink.to("ann@example.com")) == 1
