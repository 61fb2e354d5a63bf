"""The quarantine: replay after the plan or the message is fixed, discard, each audited; the
Data page's live view, install snippets and the plan inferred from observed events."""

import json

import pytest

from access.models import AuditLog
from profiles.ingestion import ingest_messages, tracking_plan_save
from profiles.models import Event, QuarantinedMessage

pytestmark = pytest.mark.django_db

PLAN = {
    "Order Completed": {
        "type": "object",
        "required": ["revenue"],
        "properties": {"revenue": {"type": "number"}},
    }
}


def _order(n: int, revenue) -> dict:
    return {
        "type": "track",
        "event": "Order Completed",
        "userId": f"u-{n}",
        "messageId": f"order-{n}",
        "timestamp": "2025-05-01T10:00:00Z",
        "properties": {"revenue": revenue},
    }


@pytest.fixture
def quarantined(source):
    tracking_plan_save(source=source, mode="quarantine", event_schemas=PLAN)
    ingest_messages(source=source, messages=[_order(1, "12.50"), _order(2, "7"), _order(3, 3)])
    assert QuarantinedMessage.objects.count() == 2
    return source


def test_the_quarantine_names_the_failing_field(staff_client, admin_user, quarantined):
    page = staff_client(admin_user).get("/data/quarantine/").content.decode()
    assert "<code>properties.revenue</code>" in page


def test_a_fixed_message_is_replayed_and_stored_exactly_once(
    staff_client, admin_user, quarantined, django_capture_on_commit_callbacks
):
    client = staff_client(admin_user)
    item = QuarantinedMessage.objects.get(message_id="order-1")
    fixed = {**item.message, "properties": {"revenue": 12.5}}
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/data/quarantine/{item.pk}/act/", {"action": "replay", "message": json.dumps(fixed)}
        )
    assert response.status_code == 302
    stored = Event.objects.get(message_id="order-1")
    assert stored.properties == {"revenue": 12.5} and stored.profile is not None
    assert stored.received_at == item.received_at
    assert not QuarantinedMessage.objects.filter(pk=item.pk).exists()
    # Replaying the same message again (sent anew by the SDK, quarantined again) adds nothing.
    QuarantinedMessage.objects.create(
        source=quarantined,
        received_at=item.received_at,
        message=fixed,
        event="Order Completed",
        reason="again",
        errors=[],
    )
    client.post("/data/quarantine/bulk/", {"action": "replay", "event": "Order Completed"})
    assert Event.objects.filter(message_id="order-1").count() == 1
    actions = list(AuditLog.objects.order_by("id").values_list("action", flat=True))
    assert actions[-3:] == ["quarantine.edit", "quarantine.replay", "quarantine.replay"]
    last = AuditLog.objects.order_by("id").last()
    assert last.details["duplicates"] == 1 and last.actor == admin_user


def test_after_the_plan_is_fixed_all_matching_messages_replay(
    staff_client, admin_user, quarantined
):
    tracking_plan_save(
        source=quarantined,
        mode="quarantine",
        event_schemas={"Order Completed": {"type": "object"}},
    )
    response = staff_client(admin_user).post(
        "/data/quarantine/bulk/", {"action": "replay", "source": quarantined.pk}
    )
    assert response.status_code == 302
    assert sorted(Event.objects.values_list("message_id", flat=True)) == [
        "order-1",
        "order-2",
        "order-3",
    ]
    assert not QuarantinedMessage.objects.exists()


def test_a_message_still_failing_stays_with_its_new_reason(staff_client, admin_user, quarantined):
    item = QuarantinedMessage.objects.get(message_id="order-2")
    staff_client(admin_user).post(
        f"/data/quarantine/{item.pk}/act/",
        {"action": "replay", "message": json.dumps(item.message)},
    )
    item.refresh_from_db()
    assert "properties.revenue" in item.reason
    assert not Event.objects.filter(message_id="order-2").exists()


def test_discard_deletes_and_is_audited(staff_client, admin_user, quarantined):
    item = QuarantinedMessage.objects.get(message_id="order-2")
    staff_client(admin_user).post(f"/data/quarantine/{item.pk}/act/", {"action": "discard"})
    assert not QuarantinedMessage.objects.filter(pk=item.pk).exists()
    audit = AuditLog.objects.get(action="quarantine.discard")
    assert audit.details == {"id": item.pk, "messages": 1}


def test_marketers_see_the_quarantine_but_cannot_replay_or_discard(
    staff_client, marketer, quarantined
):
    client = staff_client(marketer)
    item = QuarantinedMessage.objects.first()
    assert client.get(f"/data/quarantine/{item.pk}/").status_code == 200
    assert client.post(f"/data/quarantine/{item.pk}/act/", {"action": "discard"}).status_code == 403
    assert client.post("/data/quarantine/bulk/", {"action": "replay"}).status_code == 403
    assert QuarantinedMessage.objects.count() == 2


def test_the_plan_can_start_from_the_schema_of_observed_events(staff_client, admin_user, source):
    ingest_messages(
        source=source,
        messages=[_order(1, 10), {**_order(2, 5.5), "properties": {"revenue": 5.5, "coupon": "X"}}],
    )
    page = staff_client(admin_user).get(f"/data/sources/{source.pk}/?infer=1").content.decode()
    assert "Started from the schema" in page
    assert "&quot;coupon&quot;" in page and "&quot;required&quot;" in page


def test_the_source_page_has_install_snippets_and_a_live_view(staff_client, marketer, source):
    ingest_messages(source=source, messages=[_order(1, 10)])
    client = staff_client(marketer)
    page = client.get(f"/data/sources/{source.pk}/").content.decode()
    assert (
        'cdnURL: "http' in page and "analytics.host" in page and "@segment/analytics-node" in page
    )
    live = client.get(f"/data/sources/{source.pk}/live/").content.decode()
    assert 'hx-trigger="every 2s"' in live and "Order Completed" in live


def test_a_tracking_plan_change_is_audited(staff_client, admin_user, source):
    response = staff_client(admin_user).post(
        f"/data/sources/{source.pk}/plan/",
        {"mode": "quarantine", "event_schemas": json.dumps(PLAN)},
    )
    assert response.status_code == 302
    row = AuditLog.objects.get(action="tracking_plan.save")
    assert row.actor == admin_user and row.resource_id == str(source.pk)
    assert row.details == {"mode": "quarantine", "events": ["Order Completed"]}


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"type": "identify", "userId": "a\u0000b"}),
        json.dumps({"type": "identify", "userId": "u", "traits": {"k\u0000": "v"}}),
        '{"a":' * 3000 + "1" + "}" * 3000,
    ],
    ids=["nul-value", "nul-key", "deep"],
)
def test_an_edited_message_the_database_cannot_hold_is_a_form_error(
    staff_client, admin_user, quarantined, text
):
    item = QuarantinedMessage.objects.get(message_id="order-2")
    response = staff_client(admin_user).post(
        f"/data/quarantine/{item.pk}/act/", {"action": "replay", "message": text}
    )
    assert response.status_code == 400
    item.refresh_from_db()
    assert "\u0000" not in json.dumps(item.message)
