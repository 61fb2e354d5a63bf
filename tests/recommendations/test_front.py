"""Profiles' lists answered by the web nodes' WSGI front (recommendations/front.py): the same
answers as the API view behind Django's handler, which answers everything the front declines.

Answers from the front carry no X-Frame-Options header (Django's clickjacking middleware adds
it to everything its handler serves): that is how these tests tell who answered."""

from __future__ import annotations

import json

import pytest

from access.auth import ApiKeyRateThrottle
from access.services import api_key_create
from consent.services import consent_record
from tests.recommendations.test_serving import a_person
from tests.wsgi import wsgi_call

pytestmark = pytest.mark.django_db(transaction=True)


def _get(app, path: str, key: str | None, **environ: str) -> tuple[int, dict[str, str], bytes]:
    path, _, query = path.partition("?")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    status, headers, content = wsgi_call(app, "GET", path, query, **{**auth, **environ})
    return int(status.split()[0]), headers, content


def _front(path: str, key: str | None, **environ: str):
    from cdp.wsgi import application

    return _get(application, path, key, **environ)


def _django(path: str, key: str | None, **environ: str):
    from cdp.wsgi import django_application

    return _get(django_application, path, key, **environ)


@pytest.fixture
def key(served) -> str:
    return api_key_create(name="shop", scopes=["recommendations:read"]).key


def test_lists_are_answered_by_the_front_as_the_api_answers_them(served, key):
    _, profile = a_person(served)
    path = f"/api/v1/profiles/{profile.pk}/recommendations/?slot=home&k=5"
    status, headers, built = _front(path, key)  # built and cached
    assert status == 200 and "X-Frame-Options" not in headers
    assert json.loads(built)["cached"] is False
    status, headers, front = _front(path, key)
    assert status == 200 and "X-Frame-Options" not in headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert (headers["Vary"], headers["Allow"]) == ("Accept", "GET, HEAD, OPTIONS")
    _, django_headers, django = _django(path, key)
    assert json.loads(front) == json.loads(django)
    assert json.loads(front)["cached"] is True
    assert json.loads(front)["results"] == json.loads(built)["results"]
    assert {name: django_headers[name] for name in ("Allow", "Content-Type")} == {
        name: headers[name] for name in ("Allow", "Content-Type")
    }
    # Django's also varies by Cookie (its session middleware looked for one): a key's answer
    # does not depend on cookies.
    assert django_headers["Vary"] == "Accept, Cookie"


@pytest.mark.parametrize(
    ("query", "credentials", "environ"),
    [
        ("slot=home&k=5", "none", {}),  # no key: Django's 401/403
        ("slot=home&k=5", "bad", {}),  # not a key
        ("slot=home&k=5", "other scope", {}),
        ("slot=home&k=0", "key", {}),  # k out of range: 400
        ("slot=nothing", "key", {}),  # unknown slot
        ("slot=home&k=5&color=red", "key", {}),  # unknown parameter
        ("slot=similar&page_item=nope", "key", {}),  # unknown item: 404
        ("slot=home&k=5", "key", {"HTTP_ACCEPT": "text/html"}),  # the browsable API
        ("slot=home&k=5&format=json", "key", {}),
        ("slot=home&k=5", "key", {"REQUEST_METHOD": "HEAD"}),
    ],
)
def test_what_the_front_cannot_answer_exactly_is_left_to_the_api(
    served, key, query, credentials, environ
):
    _, profile = a_person(served)
    path = f"/api/v1/profiles/{profile.pk}/recommendations/?{query}"
    keys = {
        "none": None,
        "bad": "not-a-key",
        "other scope": api_key_create(name="p", scopes=["profiles:read"]).key,
        "key": key,
    }
    _front(path, key)  # cached where it can be, so that both answers below read the cache
    status, headers, content = _front(path, keys[credentials], **environ)
    assert "X-Frame-Options" in headers  # Django's handler answered
    expected_status, _, expected = _django(path, keys[credentials], **environ)
    assert status == expected_status
    if environ.get("HTTP_ACCEPT") != "text/html":
        assert content == expected


def test_unknown_and_withdrawn_profiles(served, key):
    _, profile = a_person(served)
    assert _front("/api/v1/profiles/999999999/recommendations/", key)[0] == 404
    path = f"/api/v1/profiles/{profile.pk}/recommendations/?k=5"
    _front(path, key)
    consent_record(profile=profile, purpose="personalization", granted=False, source="api")
    status, headers, content = _front(path, key)
    assert status == 200 and json.loads(content)["personal"] is False
    status, headers, again = _front(path, key)  # the non-personal list, now cached
    assert "X-Frame-Options" not in headers
    assert json.loads(again)["results"] == json.loads(content)["results"]


def test_a_merged_away_profile_gets_its_survivors_cached_list(served, key):
    from identity.services import profile_merge

    _, profile = a_person(served)
    other = next(p for u, p in served.people.items() if u.startswith("user-B-"))
    profile_merge(survivor=other, duplicate=profile, actor=None)
    merged = f"/api/v1/profiles/{profile.pk}/recommendations/?k=5"
    survivor = f"/api/v1/profiles/{other.pk}/recommendations/?k=5"
    built = json.loads(_front(survivor, key)[2])
    assert built["personal"] is True and built["cached"] is False
    status, headers, content = _front(merged, key)
    assert status == 200
    assert "X-Frame-Options" not in headers
    assert json.loads(content) == {**built, "cached": True}


def test_the_front_counts_what_it_answers_against_the_keys_rate(served, key, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    _, profile = a_person(served)
    path = f"/api/v1/profiles/{profile.pk}/recommendations/?k=5"
    statuses = [_front(path, key)[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    status, headers, _ = _front(path, key)
    assert status == 429 and int(headers["Retry-After"]) > 0


def test_lists_by_identifier_are_answered_by_the_front_as_the_api_answers_them(served, key):
    user_id, profile = a_person(served)
    by_id = json.loads(_front(f"/api/v1/profiles/{profile.pk}/recommendations/?k=5", key)[2])
    for query, personal in [
        (f"user_id={user_id}&k=5", True),
        ("anonymous_id=never-seen&k=5", False),  # a visitor not seen yet: nobody's list
    ]:
        path = f"/api/v1/recommendations/?{query}"
        status, headers, built = _front(path, key)
        assert status == 200 and "X-Frame-Options" not in headers
        status, headers, front = _front(path, key)
        assert status == 200 and "X-Frame-Options" not in headers
        _, _, django = _django(path, key)
        assert json.loads(front) == json.loads(django) == {**json.loads(built), "cached": True}
        assert json.loads(front)["personal"] is personal
    # The person's list by identifier is the one cached for their profile id.
    assert json.loads(front)["results"] != by_id["results"]
    assert json.loads(_front(f"/api/v1/recommendations/?user_id={user_id}&k=5", key)[2]) == {
        **by_id,
        "cached": True,
    }


def test_a_merged_away_visitors_identifier_gets_the_survivors_list(served, key):
    from identity.services import profile_merge

    user_id, profile = a_person(served)
    other = next(p for u, p in served.people.items() if u.startswith("user-B-"))
    profile_merge(survivor=other, duplicate=profile, actor=None)
    survivor = json.loads(_front(f"/api/v1/profiles/{other.pk}/recommendations/?k=5", key)[2])
    status, headers, content = _front(f"/api/v1/recommendations/?user_id={user_id}&k=5", key)
    assert status == 200 and "X-Frame-Options" not in headers
    assert json.loads(content) == {**survivor, "cached": True}


@pytest.mark.parametrize(
    ("query", "credentials"),
    [
        ("user_id=u&anonymous_id=a", "key"),  # both: 400
        ("k=5", "key"),  # neither
        ("user_id=&k=5", "key"),  # empty
        ("user_id=u&k=500", "key"),  # k out of range
        ("user_id=u&slot=nothing", "key"),
        ("user_id=u", "none"),
        ("user_id=u", "other scope"),
    ],
)
def test_what_the_front_cannot_answer_by_identifier_is_left_to_the_api(
    served, key, query, credentials
):
    keys = {
        "none": None,
        "other scope": api_key_create(name="p", scopes=["profiles:read"]).key,
        "key": key,
    }
    path = f"/api/v1/recommendations/?{query}"
    status, headers, content = _front(path, keys[credentials])
    assert "X-Frame-Options" in headers  # Django's handler answered
    expected_status, _, expected = _django(path, keys[credentials])
    assert status == expected_status and status != 200
    assert content == expected
