"""The dead-letter list and its replay (one, a channel's, all); erasure removes a person's
journeys, deliveries and tracking rows."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import services
from campaigns.models import Delivery, DeliveryEvent, Entry
from consent.services import subject_erase
from tests.campaigns.conftest import CART, cart_reminder, person, track

pytestmark = pytest.mark.django_db


def _failed(source, channel, make_campaign, smtp, n: int) -> list[Delivery]:
    body = cart_reminder(channel, entry="every_time", frequency_cap={"messages": 100, "days": 1})
    body["steps"] = body["steps"][1:]
    make_campaign(body)
    smtp.refuse = "550 5.1.1 No such user"
    for i in range(n):
        someone = person(email_address=f"p{i}@example.com")
        track(source, someone, CART, at=timezone.now())
    services.entries_advance(entry_ids=list(Entry.objects.values_list("pk", flat=True)))
    for delivery_id in Delivery.objects.values_list("pk", flat=True):
        services.delivery_send(delivery_id=delivery_id)
    smtp.refuse = None
    return list(Delivery.objects.order_by("pk"))


def test_failed_deliveries_are_listed_and_replayed_one_or_all(
    admin_api, source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    failed = _failed(source, email_channel, make_campaign, smtp, 3)
    assert {d.status for d in failed} == {"failed"}
    listed = admin_api.get("/api/v1/deliveries/failed/").json()["results"]
    assert len(listed) == 3 and "550" in listed[0]["last_error"]

    with django_capture_on_commit_callbacks(execute=True):
        one = admin_api.post(
            "/api/v1/deliveries/replay/", {"deliveries": [failed[0].pk]}, format="json"
        )
    assert one.json() == {"queued": 1} and len(smtp.messages) == 1
    with django_capture_on_commit_callbacks(execute=True):
        rest = admin_api.post("/api/v1/deliveries/replay/", {"all": True}, format="json")
    assert rest.json() == {"queued": 2} and len(smtp.messages) == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert admin_api.get("/api/v1/deliveries/failed/").json()["results"] == []


def test_a_replay_must_say_what_to_replay(admin_api, marketer, compliance):
    assert admin_api.post("/api/v1/deliveries/replay/", {}, format="json").status_code == 400
    both = {"all": True, "channel": 1}
    assert admin_api.post("/api/v1/deliveries/replay/", both, format="json").status_code == 400


def test_compliance_sees_dead_letters_but_cannot_replay(compliance):
    client = APIClient()
    client.force_authenticate(compliance)
    assert client.get("/api/v1/deliveries/failed/").status_code == 200
    assert (
        client.post("/api/v1/deliveries/replay/", {"all": True}, format="json").status_code == 403
    )


def test_erasure_removes_the_persons_journeys_deliveries_and_tracking(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    body = cart_reminder(email_channel)
    body["steps"] = body["steps"][1:]
    make_campaign(body)
    ann = person(email_address="ann@example.com")
    ben = person(email_address="ben@example.com")
    for someone in (ann, ben):
        with django_capture_on_commit_callbacks(execute=True):
            track(source, someone, CART, at=timezone.now())
    mine = Delivery.objects.get(profile=ann)
    services.delivery_open_record(delivery_id=mine.pk)
    assert DeliveryEvent.objects.filter(delivery=mine).exists()

    subject_erase(profile_ids=[ann.pk], identifiers=["ann@example.com"])

    assert not Entry.objects.filter(profile_id=ann.pk).exists()
    assert not Delivery.objects.filter(profile_id=ann.pk).exists()
    assert not DeliveryEvent.objects.filter(delivery_id=mine.pk).exists()
    assert Delivery.objects.filter(profile=ben).count() == 1
    # Links in mail already sent to the erased person lead nowhere and record nothing.
    assert services.delivery_unsubscribe(delivery_id=mine.pk) is False
    assert services.delivery_open_record(delivery_id=mine.pk) is False
