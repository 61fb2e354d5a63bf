"""An admin fixes a quarantined message in the browser and replays it."""

import json

from profiles.ingestion import ingest_messages, tracking_plan_save
from profiles.models import Event, QuarantinedMessage


def test_admin_fixes_a_quarantined_message_and_replays_it(
    page, live_server, admin_user, login, shot, source
):
    tracking_plan_save(
        source=source,
        mode="quarantine",
        event_schemas={
            "Order Completed": {
                "type": "object",
                "properties": {"revenue": {"type": "number"}},
            }
        },
    )
    message = {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-1",
        "messageId": "order-1",
        "properties": {"revenue": "12.50"},
    }
    ingest_messages(source=source, messages=[message, {**message, "messageId": "order-2"}])
    login(admin_user)
    page.goto(f"{live_server.url}/data/quarantine/")
    assert "properties.revenue" in page.locator("#quarantine").inner_text()
    shot("data-quarantine")
    page.locator("#quarantine tr", has_text="order-1").get_by_text("Fix & replay").click()
    fixed = {**message, "properties": {"revenue": 12.5}}
    page.fill("#id_message", json.dumps(fixed, indent=2))
    shot("data-quarantined-message")
    page.get_by_role("button", name="Replay").click()
    page.wait_for_url(f"{live_server.url}/data/quarantine/")
    assert "1 stored" in page.locator(".messages, .flash, main").first.inner_text()
    assert list(Event.objects.values_list("message_id", flat=True)) == ["order-1"]
    assert list(QuarantinedMessage.objects.values_list("message_id", flat=True)) == ["order-2"]
    page.goto(f"{live_server.url}/data/sources/{source.pk}/")
    page.wait_for_selector("#live-events >> text=Order Completed")
    shot("data-source")
