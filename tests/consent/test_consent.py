import pytest
from hypothesis import given
from hypothesis import strategies as st

from access.models import AuditLog
from consent import selectors, services
from consent.context_signals import (
    DEFAULT_CATEGORY_MAPPING,
    category_preferences,
    purposes_from,
)
from consent.models import ConsentRecord
from profiles.models import Event, Profile

pytestmark = pytest.mark.django_db


def test_default_purposes_are_installed_with_a_description_and_legal_basis():
    codes = {p.code: p for p in selectors.purposes_all()}
    assert set(codes) >= {"analytics", "personalization", "email_marketing", "push", "advertising"}
    assert all(p.description and p.legal_basis for p in codes.values())


def test_without_a_record_the_purpose_default_answers(make_person):
    person = make_person()
    assert selectors.consent_allows(profile=person.profile, purpose="analytics") is True
    assert selectors.consent_allows(profile=person.profile, purpose="advertising") is False


def test_withdrawing_consent_refuses_the_purpose_immediately(make_person):
    person = make_person()
    services.consent_record(
        profile=person.profile, purpose="email_marketing", granted=True, source="api"
    )
    assert selectors.consent_allows(profile=person.profile, purpose="email_marketing")
    services.consent_record(
        profile=person.profile, purpose="email_marketing", granted=False, source="ui"
    )
    assert not selectors.consent_allows(profile=person.profile, purpose="email_marketing")
    allowed = selectors.consent_profiles_allowed(
        purpose="email_marketing", profiles=Profile.objects.all()
    )
    assert person.profile not in allowed


def test_the_queryset_gate_agrees_with_the_single_profile_gate(make_person):
    people = [
        make_person(email=f"p{i}@example.com", user_id=f"user-{i:04}", phone=f"+1415555010{i}")
        for i in range(4)
    ]
    services.consent_record(
        profile=people[0].profile, purpose="advertising", granted=True, source="api"
    )
    services.consent_record(
        profile=people[1].profile, purpose="personalization", granted=False, source="api"
    )
    for purpose in ("advertising", "personalization", "analytics"):
        allowed = set(
            selectors.consent_profiles_allowed(purpose=purpose, profiles=Profile.objects.all())
        )
        for person in people:
            single = selectors.consent_allows(profile=person.profile, purpose=purpose)
            assert (person.profile in allowed) == single, (purpose, person.email)


def test_consent_records_are_append_only(make_person):
    record = services.consent_record(
        profile=make_person().profile, purpose="push", granted=True, source="api"
    )
    record.granted = False
    with pytest.raises(RuntimeError, match="append-only"):
        record.save()
    with pytest.raises(RuntimeError, match="append-only"):
        record.delete()


def test_recording_consent_writes_an_audit_row_without_pii(make_person):
    person = make_person()
    services.consent_record(profile=person.profile, purpose="push", granted=False, source="api")
    row = AuditLog.objects.get(action="consent.withdraw")
    assert row.profile_id == person.profile.pk
    assert person.email not in str(row.details)


def test_segment_rudderstack_and_google_consent_mode_signals_are_read():
    context = {
        "consent": {"categoryPreferences": {"Advertising": False, "Analytics": True}},
        "consentManagement": {"allowedConsentIds": ["C0003"], "deniedConsentIds": ["C0004"]},
        "consentMode": {"analytics_storage": "granted", "ad_user_data": "denied"},
    }
    prefs = category_preferences(context)
    assert prefs == {
        "advertising": False,
        "analytics": True,
        "c0003": True,
        "c0004": False,
        "analytics_storage": True,
        "ad_user_data": False,
    }
    assert purposes_from(prefs, DEFAULT_CATEGORY_MAPPING) == {
        "advertising": False,
        "analytics": True,
        "personalization": True,
    }


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_signal_parsing_never_raises_on_any_json(context):
    prefs = category_preferences(context)
    assert all(isinstance(v, bool) for v in prefs.values())
    purposes_from(prefs, DEFAULT_CATEGORY_MAPPING)


def test_a_denial_wins_when_two_categories_name_one_purpose():
    prefs = {"ad_storage": True, "ad_user_data": False}
    assert purposes_from(prefs, DEFAULT_CATEGORY_MAPPING) == {"advertising": False}


def _event_with(profile, source, context, message_id="m-1"):
    from django.utils import timezone

    return Event.objects.create(
        source=source,
        message_id=message_id,
        type="track",
        event="Product Viewed",
        timestamp=timezone.now(),
        received_at=timezone.now(),
        properties={"sku": "A-1"},
        context=context,
        payload={"type": "track", "event": "Product Viewed", "properties": {"sku": "A-1"}},
        profile=profile,
    )


def test_an_event_context_records_consent_once_and_withdrawal_stops_analytics(make_person, source):
    person = make_person()
    denied = {"consent": {"categoryPreferences": {"Analytics": False, "Advertising": True}}}
    event = _event_with(person.profile, source, denied)
    services.consent_filter_resolved(resolved=[(person.profile, [event])])
    records = ConsentRecord.objects.filter(profile=person.profile)
    assert {(r.purpose.code, r.granted) for r in records} == {
        ("analytics", False),
        ("advertising", True),
    }
    assert not selectors.consent_allows(profile=person.profile, purpose="analytics")
    again = _event_with(person.profile, source, denied, message_id="m-2")
    kept, stripped = services.consent_filter_resolved(resolved=[(person.profile, [again])])
    assert ConsentRecord.objects.filter(profile=person.profile).count() == 2

    # Under the default "minimal" policy, the event goes on with only type, name, ids and time
    # (rewritten for the caller, the pipeline, to save).
    assert kept == [(person.profile, [again])] and stripped == [again]
    assert again.properties == {} and again.context == {}
    assert again.payload == {"type": "track", "event": "Product Viewed"}


def test_under_the_drop_policy_an_event_without_analytics_consent_stops(
    make_person, source, settings
):
    settings.CONSENT_WITHOUT_ANALYTICS = "drop"
    person = make_person()
    services.consent_record(
        profile=person.profile, purpose="analytics", granted=False, source="api"
    )
    event = _event_with(person.profile, source, {})
    kept, stripped = services.consent_filter_resolved(resolved=[(person.profile, [event])])
    assert kept == [(person.profile, [])] and stripped == []
    assert not Event.objects.filter(pk=event.pk).exists()


# --- API -------------------------------------------------------------------------------------


def test_a_cms_records_consent_by_email_and_reads_it_back(make_person, api_client_with_scopes):
    person = make_person(email="Jane.Doe@Example.com")
    api = api_client_with_scopes("consents:write", "consents:read")
    response = api.post(
        "/api/v1/consents/",
        {
            "subject": {"email": " JANE.doe@example.com "},
            "purpose": "email_marketing",
            "granted": False,
            "source": "api",
            "policy_version": "2026-01",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["profile_id"] == person.profile.pk
    state = api.get(f"/api/v1/profiles/{person.profile.pk}/consents/").json()
    row = next(r for r in state["state"] if r["purpose"] == "email_marketing")
    assert row["granted"] is False and row["policy_version"] == "2026-01"
    assert len(state["records"]) == 1


@pytest.mark.parametrize(
    "body, field",
    [
        ({"purpose": "push", "granted": True}, "subject"),
        (
            {"subject": {"email": "x@example.com"}, "purpose": "telepathy", "granted": True},
            "purpose",
        ),
        ({"subject": {"email": "x@example.com"}, "purpose": "push", "granted": "maybe"}, "granted"),
        ({"subject": {"fax": "123"}, "purpose": "push", "granted": True}, "subject"),
        ({"subject": {"email": "not-an-email"}, "purpose": "push", "granted": True}, "subject"),
        (
            {
                "subject": {"email": "x@example.com"},
                "purpose": "push",
                "granted": True,
                "source": "pigeon",
            },
            "source",
        ),
    ],
)
def test_bad_consent_input_gets_a_400_naming_the_field(api_client_with_scopes, body, field):
    response = api_client_with_scopes("consents:write").post(
        "/api/v1/consents/", body, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()


def test_consent_for_an_unknown_subject_is_404(api_client_with_scopes):
    response = api_client_with_scopes("consents:write").post(
        "/api/v1/consents/",
        {"subject": {"email": "nobody@example.com"}, "purpose": "push", "granted": True},
        format="json",
    )
    assert response.status_code == 404
    assert "subject" in response.json()


def test_a_key_without_the_consents_scope_is_refused(make_person, api_client_with_scopes):
    person = make_person()
    api = api_client_with_scopes("profiles:read", "consents:read")
    body = {"subject": {"email": person.email}, "purpose": "push", "granted": True}
    assert api.post("/api/v1/consents/", body, format="json").status_code == 403
    other = api_client_with_scopes("profiles:read")
    assert other.get(f"/api/v1/profiles/{person.profile.pk}/consents/").status_code == 403


def test_a_marketer_reads_consent_state_but_cannot_record_it(make_person, client, marketer):
    person = make_person()
    client.force_login(marketer)
    assert client.get(f"/api/v1/profiles/{person.profile.pk}/consents/").status_code == 200
    response = client.post(
        "/api/v1/consents/",
        {"subject": {"email": person.email}, "purpose": "push", "granted": True},
        content_type="application/json",
    )
    assert response.status_code == 403
