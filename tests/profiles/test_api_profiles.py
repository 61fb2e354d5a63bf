from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.models import Profile
from profiles.selectors import profile_computed_features
from tests.profiles.api_data import T0, make_event, make_profile, shopper

pytestmark = pytest.mark.django_db

PROFILE_KEYS = {"id", "traits", "computed", "context", "identities", "first_seen", "last_seen"}


@pytest.fixture
def reader(api_client_with_scopes):
    # Shapes and values as stored; masking without pii:read is tests/cdp/test_pii_walk.py's.
    return api_client_with_scopes("profiles:read", "pii:read")


@pytest.fixture
def writer(api_client_with_scopes):
    return api_client_with_scopes("profiles:read", "profiles:write", "pii:read")


def test_a_profile_is_listed_with_traits_computed_features_and_identities(reader):
    profile = shopper(country="DE")
    body = reader.get("/api/v1/profiles/").json()
    assert set(body) == {"results", "next"}
    assert body["next"] is None
    [item] = body["results"]
    assert set(item) == PROFILE_KEYS
    assert item["id"] == profile.pk
    assert item["traits"] == {"name": "Ada Lovelace", "country": "DE"}
    assert item["context"] == {"locale": "en-GB"}
    assert item["identities"] == [
        {"kind": "anonymous_id", "value": "anon-1"},
        {"kind": "email", "value": "ada@example.com"},
        {"kind": "user_id", "value": "u-1"},
    ]
    computed = item["computed"]
    assert computed["event_count"] == 12
    assert computed["session_count"] == 3
    assert computed["order_count"] == 2
    assert computed["revenue"] == 150.5
    assert computed["frequency"] == 2
    # RFM monetary is the total spent, as in segments; the average order has its own name.
    assert computed["monetary"] == 150.5
    assert computed["average_order_value"] == 75.25
    assert computed["lifetime_value"] == 150.5
    assert computed["recency_days"] == (timezone.now() - (T0 + timedelta(days=1))).days
    assert item["first_seen"].startswith("2026-03-01T12:00:00")


def test_computed_features_of_a_profile_without_orders_have_no_recency():
    features = profile_computed_features(make_profile())
    assert features["recency_days"] is None
    assert features["monetary"] == 0.0
    assert features["average_order_value"] is None
    assert features["revenue"] == 0.0


def test_merged_away_profiles_are_not_listed(reader):
    survivor = make_profile()
    make_profile(merged_into=survivor)
    ids = [item["id"] for item in reader.get("/api/v1/profiles/").json()["results"]]
    assert ids == [survivor.pk]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("email=%20ADA@Example.com%20", True),
        ("email=bob@example.com", False),
        ("user_id=u-1", True),
        ("user_id=U-1", False),
        ("user_id=%20u-1%20", True),  # ids are trimmed, as identity keys are
        ("anonymous_id=anon-1", True),
        ("trait.country=DE", True),
        ("trait.country=FR", False),
        ("trait.address.city=Berlin", True),
        ("trait.age=42", True),
        ("trait.vip=true", True),
        ("trait.country=DE&email=ada@example.com", True),
        ("trait.country=FR&email=ada@example.com", False),
    ],
)
def test_profiles_are_filtered_by_identifiers_and_traits(reader, query, expected):
    target = shopper(country="DE", address={"city": "Berlin"}, age=42, vip=True)
    make_profile(traits={"country": "IT"}, identities={"email": "other@example.com"})
    ids = [item["id"] for item in reader.get(f"/api/v1/profiles/?{query}").json()["results"]]
    assert ids == ([target.pk] if expected else [])


def test_a_numeric_trait_filter_also_matches_the_string_value(reader):
    profile = make_profile(traits={"zip": "10115"})
    ids = [r["id"] for r in reader.get("/api/v1/profiles/?trait.zip=10115").json()["results"]]
    assert ids == [profile.pk]


def test_phone_lookup_compares_e164(reader, settings):
    settings.PHONE_DEFAULT_REGION = "DE"
    profile = make_profile(identities={"phone": "+4915112345678"})
    ids = [r["id"] for r in reader.get("/api/v1/profiles/?phone=0151 12345678").json()["results"]]
    assert ids == [profile.pk]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("phone=not-a-phone", "phone"),
        ("phone=%2B1%20555%20555%200123", "phone"),  # possible, not valid: never an identity
        ("email=no-at-sign", "email"),
        ("email=a%20b@example.com", "email"),
        ("emial=ada@example.com", "emial"),
        ("trait.=x", "trait."),
        ("trait.a..b=x", "trait.a..b"),
        ("email=", "email"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=garbage", "cursor"),
        ("cursor=WyJub3QtYW4taWQiXQ", "cursor"),
    ],
)
def test_bad_list_parameters_get_a_400_naming_the_parameter(reader, query, field):
    response = reader.get(f"/api/v1/profiles/?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_cursor_pages_are_stable_when_profiles_are_added_meanwhile(reader):
    created = [make_profile().pk for _ in range(5)]
    first = reader.get("/api/v1/profiles/?limit=2").json()
    assert [r["id"] for r in first["results"]] == created[::-1][:2]
    make_profile()  # a newer profile lands between page requests
    second = reader.get(first["next"]).json()
    third = reader.get(second["next"]).json()
    assert [r["id"] for r in second["results"]] == created[::-1][2:4]
    assert [r["id"] for r in third["results"]] == created[::-1][4:]
    assert third["next"] is None


def test_the_list_runs_a_fixed_number_of_queries(reader, django_assert_num_queries):
    for n in range(30):
        make_profile(identities={"email": f"p{n}@example.com", "user_id": f"u{n}"})
    reader.get("/api/v1/profiles/")  # the key's first use records last_used_at
    # API key lookup, profiles page, identities of the page, model scores of the page.
    with django_assert_num_queries(4):
        response = reader.get("/api/v1/profiles/?limit=30")
    assert len(response.json()["results"]) == 30


def test_profile_detail_has_the_same_shape(reader):
    profile = shopper()
    body = reader.get(f"/api/v1/profiles/{profile.pk}/").json()
    assert set(body) == PROFILE_KEYS
    assert body["id"] == profile.pk


def test_an_unknown_profile_is_a_404_saying_so(reader):
    response = reader.get("/api/v1/profiles/999999/")
    assert response.status_code == 404
    assert "999999" in response.json()["detail"]


def test_a_merged_profile_redirects_to_its_survivor_through_a_chain(reader):
    survivor = make_profile()
    middle = make_profile(merged_into=survivor)
    first = make_profile(merged_into=middle)
    response = reader.get(f"/api/v1/profiles/{first.pk}/")
    assert response.status_code == 301
    assert response["Location"].endswith(f"/api/v1/profiles/{survivor.pk}/")
    assert response.json()["merged_into"] == survivor.pk
    events = reader.get(f"/api/v1/profiles/{first.pk}/events/?limit=5")
    assert events.status_code == 301
    assert events["Location"].endswith(f"/api/v1/profiles/{survivor.pk}/events/?limit=5")


def test_patch_on_a_merged_profile_keeps_the_method_with_a_308(writer):
    survivor = make_profile()
    merged = make_profile(merged_into=survivor)
    response = writer.patch(
        f"/api/v1/profiles/{merged.pk}/", {"traits": {"plan": "pro"}}, format="json"
    )
    assert response.status_code == 308
    merged.refresh_from_db()
    assert merged.traits == {}


def test_patch_merges_traits_and_null_deletes_a_key(writer):
    profile = make_profile(traits={"plan": "free", "nickname": "ada", "country": "DE"})
    before = timezone.now()
    response = writer.patch(
        f"/api/v1/profiles/{profile.pk}/",
        {"traits": {"plan": "pro", "nickname": None, "tags": ["a", {"b": 1}]}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["traits"] == {"plan": "pro", "country": "DE", "tags": ["a", {"b": 1}]}
    profile.refresh_from_db()
    assert profile.traits == {"plan": "pro", "country": "DE", "tags": ["a", {"b": 1}]}
    assert set(profile.trait_timestamps) == {"plan", "nickname", "tags"}
    assert all(stamp >= before.isoformat() for stamp in profile.trait_timestamps.values())


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"traits": ["not", "an", "object"]}, ["traits"]),
        ({"traits": "x"}, ["traits"]),
        ({}, ["traits"]),
        ({"traits": {" ": 1}}, ["traits", " "]),
        ({"traits": {"a": 1}, "colour": "red"}, ["colour"]),
        ({"traits": {"big": "x" * 40_000}}, ["traits"]),
    ],
)
def test_bad_patch_bodies_get_a_400_with_the_field_path_and_change_nothing(writer, body, path):
    profile = make_profile(traits={"plan": "free"})
    response = writer.patch(f"/api/v1/profiles/{profile.pk}/", body, format="json")
    assert response.status_code == 400
    node = response.json()
    for key in path:
        assert key in node, (key, node)
        node = node[key]
    profile.refresh_from_db()
    assert profile.traits == {"plan": "free"}


def test_malformed_json_in_a_patch_is_a_400(writer):
    profile = make_profile()
    response = writer.patch(
        f"/api/v1/profiles/{profile.pk}/", b'{"traits": {', content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_the_timeline_is_newest_first_and_pages_stably(reader, source):
    profile = make_profile()
    other = make_profile()
    make_event(other, source, n=0, at=T0)
    events = [
        make_event(profile, source, n=n, at=T0 + timedelta(minutes=n % 3), properties={"n": n})
        for n in range(6)
    ]
    expected = [e.pk for e in sorted(events, key=lambda e: (e.timestamp, e.pk), reverse=True)]
    first = reader.get(f"/api/v1/profiles/{profile.pk}/events/?limit=4").json()
    assert set(first) == {"results", "next"}
    # A late event, older than everything served, arrives between page requests.
    late = make_event(profile, source, n=99, at=T0 - timedelta(days=1))
    second = reader.get(first["next"]).json()
    assert [e["id"] for e in first["results"] + second["results"]] == [*expected, late.pk]
    assert second["next"] is None
    item = first["results"][0]
    assert set(item) == {
        "id",
        "type",
        "event",
        "timestamp",
        "received_at",
        "properties",
        "traits",
        "context",
        "message_id",
        "source",
    }
    assert item["source"] == {"id": source.pk, "name": "Website"}
    assert item["type"] == "track"


def test_the_timeline_of_an_unknown_profile_is_a_404(reader):
    assert reader.get("/api/v1/profiles/424242/events/").status_code == 404


def test_profiles_are_ordered_newest_first(reader):
    ids = [make_profile().pk for _ in range(3)]
    listed = [r["id"] for r in reader.get("/api/v1/profiles/").json()["results"]]
    assert listed == sorted(ids, reverse=True)
    assert Profile.objects.count() == 3


def test_a_trait_edit_through_the_api_survives_older_events_processed_later(writer, source):
    from cdp import pipeline
    from tests.identity.factories import event_make

    first = event_make(
        source, "identify", user_id="u-9", traits={"plan": "free", "nickname": "ada"}
    )
    pipeline.events_process(event_ids=[first.pk])
    [listed] = writer.get("/api/v1/profiles/?user_id=u-9").json()["results"]
    response = writer.patch(
        f"/api/v1/profiles/{listed['id']}/",
        {"traits": {"plan": "pro", "nickname": None}},
        format="json",
    )
    assert response.status_code == 200
    # An identify sent before the edit (a queued SDK retry, say) arrives afterwards.
    late = event_make(
        source,
        "identify",
        user_id="u-9",
        traits={"plan": "basic", "nickname": "ada2", "city": "Paris"},
        at=timedelta(hours=1),
    )
    pipeline.events_process(event_ids=[late.pk])
    body = writer.get(f"/api/v1/profiles/{listed['id']}/").json()
    assert body["traits"] == {"plan": "pro", "city": "Paris"}
    timeline = writer.get(f"/api/v1/profiles/{listed['id']}/events/").json()["results"]
    assert [e["message_id"] for e in timeline] == [late.message_id, first.message_id]
