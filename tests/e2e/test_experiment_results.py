"""An A/B test with a control group, in a real browser: people enter through the pipeline and
get their variant's mail (the control group none), some order, and the results page shows the
funnel, the rates, the decision and its charts; the marketing dashboard shows the sends."""

import datetime as dt

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Delivery
from tests.campaigns.conftest import (  # noqa: F401 - fixtures shared with tests/campaigns
    CART,
    ORDER,
    _campaign_settings,
    email_channel,
    person,
    smtp,
    track,
)

pytestmark = pytest.mark.e2e


def test_the_results_page_shows_each_arm_and_its_charts(
    page, live_server, marketer, admin_user, login, shot, source, request
):
    sink, channel = request.getfixturevalue("smtp"), request.getfixturevalue("email_channel")
    variants = [
        {"name": name, "message": {"subject": f"Offer {name}", "text": "Hello"}}
        for name in ("A", "B")
    ]
    campaign = services.campaign_create(
        name="Spring sale",
        kind="marketing",
        definition={
            "trigger": {"event": CART},
            "entry": "once",
            "goal": {"event": ORDER, "within": {"days": 3}},
            "control": {"percent": 20},
            "steps": [{"send": {"channel": channel.pk, "variants": variants}}],
        },
        status="active",
        actor=admin_user,
    )
    for n in range(24):
        profile = person(email_address=f"p{n}@example.com")
        track(source, profile, CART, at=timezone.now())
        delivery = Delivery.objects.get(profile=profile)
        # Every third person converts, and the control group always does: lift against a
        # control with no conversion is undefined (and its chart is not drawn), and which people
        # land in the control depends on their ids.
        if n % 3 == 0 or delivery.is_control:
            moment = (delivery.sent_at or delivery.would_send_at) + dt.timedelta(minutes=5)
            track(source, profile, ORDER, at=moment, properties={"revenue": 25})
    deliveries = list(Delivery.objects.all())
    held = [d for d in deliveries if d.is_control]
    assert held and len(sink.messages) == len(deliveries) - len(held)
    assert {m["Subject"] for m in sink.messages} == {"Offer A", "Offer B"}

    login(marketer)
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/")
    page.click("text=Results")
    page.wait_for_selector("h1:has-text('Results')")
    rows = page.locator(".results-table tbody tr")
    assert rows.count() == 3
    assert "control" in rows.nth(2).inner_text()
    recipients = [
        int(rows.nth(i).locator("td").nth(1).inner_text().replace(",", "")) for i in range(3)
    ]
    assert sum(recipients) == 24 and recipients[2] == len(held)
    assert page.locator("#decision").inner_text()
    # Chart.js drew every chart on the page (data passed with json_script).
    page.wait_for_function(
        "Array.from(document.querySelectorAll('canvas[data-results-chart]'))"
        ".every(c => window.Chart && Chart.getChart(c))"
    )
    assert page.locator("canvas[data-results-chart]").count() == 3
    assert "mSPRT" in page.locator("text=About these statistics >> xpath=..").inner_text()
    shot("experiment-results")

    page.click("text=Marketing dashboard")
    page.wait_for_selector("h1:has-text('Marketing dashboard')")
    assert page.locator(".card >> text=Sent").count() == 1
    sent = page.locator(".card", has_text="Sent").first.locator("strong").inner_text()
    assert int(sent) == len(sink.messages)
    shot("marketing-dashboard")
