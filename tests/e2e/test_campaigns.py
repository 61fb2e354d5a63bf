"""Build the cart-reminder journey in the visual editor of a real browser (trigger with a
property filter, a wait, a branch, a send with its message), preview it for a profile, activate
it, send the events through the ingestion API and see the delivery in the log (and the mail at
a real SMTP server)."""

import json
import uuid

import httpx
import pytest
from django.utils import timezone

from access.services import api_key_create
from campaigns.models import Campaign
from tests.campaigns.conftest import (  # noqa: F401 - fixtures shared with tests/campaigns
    CART,
    _campaign_settings,
    email_channel,
    person,
    smtp,
    track,
)
from tests.conftest import WRITE_KEY

pytestmark = pytest.mark.e2e


def add_step(page, into: str, index: int, kind: str) -> None:
    """Open the "+" between steps (or at the top of a branch's arm) and pick a step."""
    menu = page.locator(f'details.add-step[data-into="{into}"][data-index="{index}"]')
    menu.locator("summary").click()
    menu.locator(f'[data-add-step="{kind}"]').click()


def ingest(server: str, profile, name: str, properties: dict) -> None:
    """One track call through the Segment-compatible ingestion API, as a website sends it."""
    response = httpx.post(
        f"{server}/v1/track",
        auth=(WRITE_KEY, ""),
        json={
            "userId": profile.user_id,
            "event": name,
            "properties": properties,
            "messageId": str(uuid.uuid4()),
            "timestamp": timezone.now().isoformat(),
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text


def test_build_preview_activate_and_see_the_delivery(
    page, live_server, marketer, login, shot, source, request
):
    sink, channel = request.getfixturevalue("smtp"), request.getfixturevalue("email_channel")
    # A trait that is not PII: marketers see PII traits masked in previews.
    ann = person(email_address="ann@example.com", traits={"favourite": "red shoes"})
    bob = person(email_address="bob@example.com", traits={"favourite": "socks"})
    login(marketer)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("#id_name", "Cart reminder")

    # Trigger: "Product Added" with a price above 10 (segments' own filter builder).
    page.fill("#trigger-event", CART)
    trigger = page.locator("#node-trigger [data-input=trigger-where]")
    trigger.get_by_role("button", name="+ Property filter").click()
    trigger.get_by_label("Property").fill("price")
    trigger.get_by_label("Operator").select_option("gt")
    trigger.get_by_label("Value").fill("10")

    # Steps: the first wait down to zero, a branch on "ordered in the last day", and in its
    # "otherwise" arm the email.
    page.fill("input[name='/steps/0:amount']", "0")
    page.select_option("select[name='/steps/0:unit']", "minutes")
    add_step(page, "/steps", 1, "branch")
    page.wait_for_selector("#node-steps-1.flow-branch .cond")
    add_step(page, "/steps/1/branch/else", 0, "send")
    send = "#node-steps-1-branch-else-0"
    page.wait_for_selector(f"{send}-subject")
    page.fill(f"{send}-subject", "Still thinking about the {{ profile.traits.favourite }}?")
    page.fill(
        f"{send}-html",
        "<h1>Your {{ profile.traits.favourite | default: 'cart' }}</h1><p>They miss you.</p>",
    )
    page.fill(f"{send}-text", "Your {{ profile.traits.favourite }} miss you.")

    # The message previews, live, for a chosen profile.
    page.fill("#preview-profile", str(ann.pk))
    page.dispatch_event("#preview-profile", "change")
    page.wait_for_selector(f"{send}-preview >> text=Still thinking about the red shoes?")
    heading = page.frame_locator(f"{send}-preview iframe.message-preview").locator("h1")
    assert heading.inner_text() == "Your red shoes"
    shot("campaign-editor")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("campaign-editor-phone")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.get_by_role("button", name="Save and activate").click()
    page.wait_for_selector("text=saved and active")
    campaign = Campaign.objects.get()
    assert campaign.status == "active"
    steps = campaign.versions.get().definition["steps"]
    assert steps[0] == {"wait": {"minutes": 0}}
    assert steps[1]["branch"]["else"][0]["send"]["channel"] == channel.pk
    assert campaign.versions.get().definition["trigger"] == {
        "event": CART,
        "where": [{"property": "price", "op": "gt", "value": 10}],
    }

    # A test send from the editor sends the fields as they are, saved or not. A template that
    # cannot be used is marked at its field and sends nothing.
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/")
    page.on("dialog", lambda dialog: dialog.accept())  # "leave with edits not saved?"
    page.fill("#preview-profile", str(ann.pk))
    page.fill(f"{send}-subject", "Still {% if %}")
    page.locator(send).get_by_role("button", name="Send test").click()
    page.wait_for_selector(f"{send}-test >> text=Not sent: the message has 1 problem.")
    page.wait_for_selector(f"{send}-subject[aria-invalid=true]:focus")
    page.fill(f"{send}-subject", "Edited: {{ profile.traits.favourite }} are waiting")
    assert page.get_attribute(f"{send}-subject", "aria-invalid") is None
    page.locator(send).get_by_role("button", name="Send test").click()
    page.wait_for_selector(f"{send}-test >> text=Test sent to marketer@example.com")
    (test,) = sink.to("marketer@example.com")
    assert test["Subject"] == "[Test] Edited: red shoes are waiting"
    assert campaign.versions.count() == 1  # tested, not saved

    ingest(live_server.url, ann, CART, {"price": 25, "name": "Red shoes"})
    ingest(live_server.url, bob, CART, {"price": 5, "name": "Socks"})

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.wait_for_selector("td >> text=sent")
    shot("campaign-deliveries")
    (mail,) = sink.to("ann@example.com")
    assert mail["Subject"] == "Still thinking about the red shoes?"
    assert sink.to("bob@example.com") == []  # below the trigger's price filter

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
    # In the visual editor: a send step left without a subject is marked where it is.
    add_step(page, "/steps", 1, "send")
    page.wait_for_selector("#node-steps-1-subject")
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector("#node-steps-1.invalid >> text=send/message/subject")
    shot("campaign-editor-error")
    # In the JSON view: the error names its JSON pointer.
    page.click("#view-json")
    page.fill("#id_definition", '{"trigger": {"event": "Product Added"}, "steps": [{"wait": {}}]}')
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector('code:has-text("/steps/0/wait")')
    assert not Campaign.objects.exists()

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


def test_a_two_variant_send_step_is_built_saved_and_read_back_from_the_api(
    page, live_server, marketer, login, shot, request
):
    sink, channel = request.getfixturevalue("smtp"), request.getfixturevalue("email_channel")
    ann = person(email_address="ann@example.com", traits={"favourite": "red shoes"})
    login(marketer)
    page.goto(f"{live_server.url}/campaigns/new/")
    page.fill("#id_name", "Subject line test")
    add_step(page, "/steps", 1, "send")
    send = "#node-steps-1"
    page.wait_for_selector(f"{send}-subject")
    page.fill(f"{send}-subject", "Your {{ profile.traits.favourite }} are waiting")
    page.fill(f"{send}-text", "Come back")

    # The one message becomes variants A and B, each with its own fields.
    page.locator(send).get_by_role("button", name="A/B test this message").click()
    a, b = f"{send}-send-variants-0", f"{send}-send-variants-1"
    page.wait_for_selector(f"{b}-subject")
    assert page.input_value(f"{a}-subject") == page.input_value(f"{b}-subject")
    page.fill(f"{a}-weight", "70")
    page.fill(f"{b}-name", "Urgent")
    page.fill(f"{b}-weight", "30")
    page.fill(f"{b}-subject", "Last chance: {{ profile.traits.favourite }}")
    page.wait_for_selector(f"{b} output[data-share] >> text=30% of people")
    page.fill("#preview-profile", str(ann.pk))
    page.dispatch_event("#preview-profile", "change")
    page.wait_for_selector(f"{a}-preview >> text=Your red shoes are waiting")
    page.wait_for_selector(f"{b}-preview >> text=Last chance: red shoes")

    # A third variant (the first free letter) comes and goes; the edits stay.
    page.get_by_role("button", name="+ Add variant").click()
    page.wait_for_selector(f"{send}-send-variants-2-name")
    assert page.input_value(f"{send}-send-variants-2-name") == "B"
    page.get_by_role("button", name="Remove variant B").click()
    page.wait_for_selector(f"{send}-send-variants-2", state="detached")
    assert page.input_value(f"{b}-name") == "Urgent"

    # The JSON view shows the same step, and the visual editor draws it back.
    page.click("#view-json")
    shown = json.loads(page.input_value("#id_definition"))["steps"][1]["send"]
    assert [(v["name"], v["weight"]) for v in shown["variants"]] == [("A", 70), ("Urgent", 30)]
    page.click("#view-visual")
    page.wait_for_selector(f"{b}-name")
    assert page.input_value(f"{b}-subject") == "Last chance: {{ profile.traits.favourite }}"
    page.wait_for_selector(f"{b}-preview >> text=Last chance: red shoes")

    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_selector("text=saved")
    campaign = Campaign.objects.get()
    key = api_key_create(name="CRM", scopes=["campaigns:read"]).key
    response = httpx.get(
        f"{live_server.url}/api/v1/campaigns/{campaign.pk}/",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["steps"][1] == {
        "send": {
            "channel": channel.pk,
            "allocation": "split",
            "variants": [
                {
                    "name": "A",
                    "weight": 70,
                    "message": {
                        "subject": "Your {{ profile.traits.favourite }} are waiting",
                        "text": "Come back",
                    },
                },
                {
                    "name": "Urgent",
                    "weight": 30,
                    "message": {
                        "subject": "Last chance: {{ profile.traits.favourite }}",
                        "text": "Come back",
                    },
                },
            ],
        }
    }

    # Each variant has its own test send, of its fields as they are.
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/edit/")
    page.on("dialog", lambda dialog: dialog.accept())
    page.fill("#preview-profile", str(ann.pk))
    page.fill(f"{b}-subject", "Really the last chance: {{ profile.traits.favourite }}")
    page.locator(b).get_by_role("button", name="Send test").click()
    page.wait_for_selector(f"{b}-test >> text=Test sent to marketer@example.com")
    assert [m["Subject"] for m in sink.messages] == ["[Test] Really the last chance: red shoes"]
    page.wait_for_selector(f"{b}-preview >> text=Really the last chance: red shoes")
    page.evaluate("window.scrollTo(0, 0)")  # the sticky toolbar then stays at the top
    page.set_viewport_size({"width": 1440, "height": 900})
    shot("campaign-editor-variants")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("campaign-editor-variants-phone")
