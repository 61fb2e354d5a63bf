"""Suppression at ingestion (real HTTP ingestion routes) and consent in the pipeline."""

import base64
import json

import pytest

from access.models import AuditLog
from cdp import pipeline
from consent import selectors, services
from consent.models import ConsentRecord, Suppression
from profiles.models import DroppedMessageCount, Event

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode()}


def post(client, path, body):
    return client.generic(
        "POST", path, data=json.dumps(body).encode(), content_type="application/json", **AUTH
    )


def suppress(person, compliance, kind="email"):
    value = {"email": person.email, "user_id": person.user_id}[kind]
    request = services.privacy_request_create(
        regulation_type="SUPPRESS_ONLY", subject={kind: value}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    return services.privacy_request_process(request=request)


def test_a_suppressed_subjects_resent_events_are_dropped_and_counted(
    client, make_person, compliance
):
    person = make_person(email="gone@example.com", user_id="user-gone-1")
    before = Event.objects.count()
    suppress(person, compliance)
    # Re-sent by every identifier the person is known by: the suppression covers them all.
    for body in (
        {"userId": "user-gone-1", "event": "Viewed", "messageId": "r1"},
        {"anonymousId": "anon-user-gone-1", "event": "Viewed", "messageId": "r2"},
        {
            "userId": "someone-new",
            "event": "Viewed",
            "messageId": "r3",
            "context": {"traits": {"email": " GONE@example.com"}},
        },
    ):
        response = post(client, "/v1/track", body)
        assert response.status_code == 200, response.content
    assert Event.objects.count() == before
    assert not Event.objects.filter(message_id__in=["r1", "r2", "r3"]).exists()
    assert DroppedMessageCount.objects.get(reason="suppressed").count == 3
    assert sum(Suppression.objects.values_list("dropped_count", flat=True)) == 3


def test_other_people_pass_and_unsuppress_lets_the_subject_back_in(client, make_person, compliance):
    person = make_person(email="back@example.com", user_id="user-back-1")
    suppress(person, compliance, kind="user_id")
    assert (
        post(
            client, "/v1/track", {"userId": "user-other", "event": "V", "messageId": "o1"}
        ).status_code
        == 200
    )
    assert Event.objects.filter(message_id="o1").exists()
    post(client, "/v1/track", {"userId": "user-back-1", "event": "V", "messageId": "b1"})
    assert not Event.objects.filter(message_id="b1").exists()

    request = services.privacy_request_create(
        regulation_type="UNSUPPRESS", subject={"user_id": "user-back-1"}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    services.privacy_request_process(request=request)
    post(client, "/v1/track", {"userId": "user-back-1", "event": "V", "messageId": "b2"})
    assert Event.objects.filter(message_id="b2").exists()


def test_a_suppressed_profile_is_allowed_nothing(make_person, compliance):
    person = make_person()
    suppress(person, compliance)
    for purpose in ("analytics", "email_marketing", "personalization"):
        assert not selectors.consent_allows(profile=person.profile, purpose=purpose)


def test_an_ingested_consent_banner_choice_is_recorded_and_stops_analytics(client, source):
    context = {"consent": {"categoryPreferences": {"Analytics": False, "Advertising": True}}}
    body = {
        "userId": "user-banner-1",
        "event": "Product Viewed",
        "messageId": "c1",
        "properties": {"sku": "SKU-1", "price": 10},
        "context": context,
    }
    assert post(client, "/v1/track", body).status_code == 200
    event = Event.objects.get(message_id="c1")
    pipeline.events_process(event_ids=[event.pk])
    event.refresh_from_db()
    profile = event.profile
    assert profile is not None
    states = {r["purpose"]: r["granted"] for r in selectors.consent_current_state(profile=profile)}
    assert states["analytics"] is False and states["advertising"] is True
    assert ConsentRecord.objects.filter(profile=profile, source="sdk").count() == 2
    # Stripped by the default "minimal" policy: type, name, ids and time stay.
    assert event.properties == {} and event.context == {}
    assert event.event == "Product Viewed"


def test_rudderstack_consent_management_and_google_consent_mode_reach_the_profile(client, source):
    body = {
        "userId": "user-rudder-1",
        "event": "Product Viewed",
        "messageId": "rd1",
        "context": {
            "consentManagement": {
                "provider": "oneTrust",
                "allowedConsentIds": ["C0002", "C0004"],
                "deniedConsentIds": ["C0003"],
            },
            "consent": {"ad_personalization": "denied"},
        },
    }
    assert post(client, "/v1/track", body).status_code == 200
    event = Event.objects.get(message_id="rd1")
    pipeline.events_process(event_ids=[event.pk])
    event.refresh_from_db()
    states = {r["purpose"]: r for r in selectors.consent_current_state(profile=event.profile)}
    assert states["analytics"]["granted"] is True and not states["analytics"]["by_default"]
    assert states["personalization"]["granted"] is False
    assert states["advertising"]["granted"] is False  # ad_personalization denied wins over C0004
    assert event.context["consentManagement"]["provider"] == "oneTrust"


def test_suppression_hooks_get_the_subjects_profiles_and_their_counts_are_audited(
    make_person, compliance
):
    """An app above consent drops what it keeps to treat the person, when the person is
    suppressed (experiences registers its decisions this way); the counts go on the audit row,
    and a hook that removed nothing adds nothing there."""
    person = make_person(email="hooked@example.com", user_id="user-hooked-1")
    calls: list[list[int]] = []

    def hook(*, profile_ids: list[int]) -> dict[str, int]:
        calls.append(sorted(profile_ids))
        return {"tests.Thing": 2, "tests.Nothing": 0}

    services.suppression_hook_register(name="tests", hook=hook)
    try:
        suppress(person, compliance)
    finally:
        services.SUPPRESSION_HOOKS.pop("tests")
    assert calls == [[person.profile.pk]]
    audit = AuditLog.objects.get(action="suppress", profile_id=person.profile.pk)
    assert audit.details["removed"] == {"tests.Thing": 2}
