"""`/v1/decide` over HTTP: write key, CORS, errors in the SDK shape, single and batch forms."""

from __future__ import annotations

import base64
import json

import pytest

from experiences.services import placement_create
from tests.conftest import WRITE_KEY
from tests.experiences.conftest import visitor
from tests.wsgi import wsgi_call

pytestmark = pytest.mark.django_db


def basic(key: str = WRITE_KEY) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def hero(placement, make_experience, source):
    return make_experience(page=[{"field": "path", "op": "starts_with", "value": "/shop"}])


def test_a_known_visitor_gets_the_variant_with_cors(client, hero):
    _, anonymous_id = visitor()
    response = client.get(
        "/v1/decide",
        {"placement": "home_hero", "anonymousId": anonymous_id, "path": "/shop/x"},
        **basic(),
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "private, no-store"
    body = response.json()
    assert body["experience"] == hero.pk
    assert (body["placement"], body["variant"], body["content"]) == (
        "home_hero",
        "A",
        {"title": "Sale"},
    )
    assert len(body["decision_id"]) == 36


def test_write_key_in_the_query_and_in_a_post_body(client, hero):
    _, anonymous_id = visitor()
    response = client.get(
        "/v1/decide",
        {"placement": "home_hero", "anonymousId": anonymous_id, "writeKey": WRITE_KEY},
    )
    assert response.status_code == 200
    response = client.post(
        "/v1/decide",
        json.dumps(
            {
                "writeKey": WRITE_KEY,
                "placements": ["home_hero"],
                "anonymousId": anonymous_id,
                "page": {"path": "/shop"},
            }
        ),
        content_type="text/plain",
    )
    assert response.status_code == 200
    assert response.json()["decisions"][0]["variant"] == "A"


def test_batch_form_answers_every_placement_in_order(client, hero):
    placement_create(
        fields={"key": "cart_banner", "name": "Cart", "default_content": {"text": "Hi"}},
        actor=None,
    )
    _, anonymous_id = visitor()
    response = client.get(
        "/v1/decide",
        {"placements": "cart_banner,home_hero", "anonymousId": anonymous_id, "path": "/shop"},
        **basic(),
    )
    decisions = response.json()["decisions"]
    assert [d["placement"] for d in decisions] == ["cart_banner", "home_hero"]
    assert decisions[0]["content"] == {"text": "Hi"} and decisions[0]["decision_id"] is None
    assert decisions[1]["variant"] == "A"


def test_an_unseen_visitor_gets_a_page_context_experience_and_leaves_nothing_stored(
    client, hero, make_experience
):
    from experiences.models import Decision
    from profiles.models import Profile

    make_experience(
        name="Pros only",
        priority=1,
        audience={"trait": "plan", "op": "eq", "value": "pro"},
        page=[{"field": "path", "op": "starts_with", "value": "/shop"}],
        variants=[{"name": "P", "content": {"title": "Pro {{ page.path }}"}}],
    )
    profiles = Profile.objects.count()
    response = client.get(
        "/v1/decide", {"placement": "home_hero", "userId": "never-seen", "path": "/shop"}, **basic()
    )
    assert response.status_code == 200
    # The audience of the first experience is personal: skipped; the page-only one answers.
    assert response.json() == {
        "placement": "home_hero",
        "experience": hero.pk,
        "variant": "A",
        "content": {"title": "Sale"},
        "decision_id": None,
    }
    assert Profile.objects.count() == profiles and not Decision.objects.exists()
    elsewhere = client.get(
        "/v1/decide", {"placement": "home_hero", "userId": "never-seen", "path": "/blog"}, **basic()
    )
    assert elsewhere.json()["content"] == {"title": "Welcome"}


def test_preflight_is_answered_for_browsers(client, hero):
    response = client.options("/v1/decide", HTTP_ORIGIN="https://shop.example")
    assert response.status_code == 204
    assert "GET" in response["Access-Control-Allow-Methods"]
    assert "Authorization" in response["Access-Control-Allow-Headers"]


@pytest.mark.parametrize(
    ("params", "headers", "status", "code", "field"),
    [
        ({"placement": "home_hero", "anonymousId": "a"}, {}, 401, "invalid_write_key", ""),
        # Without a key, the key is what is wrong, whatever else is.
        ({"placement": "home_hero", "colour": "red"}, {}, 401, "invalid_write_key", ""),
        (
            {"placement": "home_hero", "anonymousId": "a"},
            basic("wrong"),
            401,
            "invalid_write_key",
            "",
        ),
        ({"anonymousId": "a"}, basic(), 400, "invalid_request", "placement"),
        ({"placement": "home_hero"}, basic(), 400, "invalid_request", "anonymousId"),
        (
            {"placement": "home_hero", "anonymousId": "a", "userId": "b"},
            basic(),
            400,
            "invalid_request",
            "anonymousId",
        ),
        (
            {"placement": "home_hero", "anonymousId": "a", "colour": "red"},
            basic(),
            400,
            "invalid_request",
            "colour",
        ),
        (
            {"placement": "home_hero", "anonymousId": "a", "path": "x" * 3000},
            basic(),
            400,
            "invalid_request",
            "path",
        ),
        ({"placement": "nope", "anonymousId": "a"}, basic(), 404, "unknown_placement", "nope"),
        (
            {"placements": ",".join(["a"] * 21), "anonymousId": "a"},
            basic(),
            400,
            "invalid_request",
            "placements",
        ),
    ],
)
def test_errors_come_in_the_sdk_shape_naming_the_field(
    client, hero, params, headers, status, code, field
):
    response = client.get("/v1/decide", params, **headers)
    assert response.status_code == status
    assert response["Access-Control-Allow-Origin"] == "*"
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    assert field in body["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "malformed"),
        (json.dumps([1]), "body"),
        (json.dumps({"placements": "home_hero", "anonymousId": "a", "bogus": 1}), "bogus"),
        (json.dumps({"placements": [], "anonymousId": "a"}), "placements"),
        (json.dumps({"placements": ["home_hero"], "anonymousId": "a", "page": []}), "page"),
        (
            json.dumps({"placements": ["home_hero"], "anonymousId": "a", "page": {"os": "x"}}),
            "page.os",
        ),
        (json.dumps({"placements": ["home_hero"], "anonymousId": {"x": 1}}), "anonymousId"),
    ],
)
def test_bad_post_bodies_are_400s_naming_the_field(client, hero, body, field):
    response = client.post("/v1/decide", body, content_type="application/json", **basic())
    assert response.status_code == 400, response.content
    body = response.json()
    assert field.lower() in body["message"].lower() or field in body["code"]


def test_other_methods_are_refused(client, hero):
    response = client.delete("/v1/decide", **basic())
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_a_visitor_merged_away_is_decided_for_as_the_survivor(client, hero):
    from experiences.models import Decision
    from identity.models import Identity
    from profiles.models import Profile

    survivor, _ = visitor()
    duplicate = Profile.objects.create(merged_into=survivor)
    Identity.objects.create(kind="user_id", value="old-login", profile=duplicate)
    response = client.get(
        "/v1/decide", {"placement": "home_hero", "userId": "old-login", "path": "/shop"}, **basic()
    )
    assert response.json()["variant"] == "A"
    assert Decision.objects.get().profile_id == survivor.pk


# The web nodes' WSGI entry (cdp/wsgi.py) serves /v1/decide in front of Django's handler, as it
# serves ingestion. Called in process: transactional tests, since the front closes a connection
# left outside autocommit, as Django's request signals do.


@pytest.mark.django_db(transaction=True)
def test_the_web_entry_answers_decide_in_front_of_django_as_django_does(hero):
    from cdp.wsgi import application, django_application
    from experiences.models import Decision

    _, anonymous_id = visitor()
    known = f"placement=home_hero&anonymousId={anonymous_id}&path=/shop/x"
    batch = json.dumps(
        {"writeKey": WRITE_KEY, "placements": ["home_hero"], "anonymousId": anonymous_id}
    ).encode()
    asked = [
        ("GET", "/v1/decide", known, b"", basic()),
        ("GET", "/v1/decide/", f"{known}&writeKey={WRITE_KEY}", b"", {}),
        ("POST", "/v1/decide", "", batch, {}),
        ("GET", "/v1/decide", known, b"", {}),  # no key
        ("GET", "/v1/decide", known, b"", basic("wrong")),
        ("GET", "/v1/decide", f"{known}&colour=red", b"", basic()),
        ("GET", "/v1/decide", "placement=nowhere&anonymousId=a", b"", basic()),
        ("OPTIONS", "/v1/decide", "", b"", {"HTTP_ORIGIN": "https://shop.example"}),
        ("PUT", "/v1/decide", "", b"", basic()),
    ]
    statuses = []
    for method, path, query, body, headers in asked:
        # Django's handler second: the front's first decision is the sticky one both read.
        front = wsgi_call(application, method, path, query, body, **headers)
        behind = wsgi_call(django_application, method, path, query, body, **headers)
        assert front[0] == behind[0]
        assert front[2] == behind[2]
        for name in ("Access-Control-Allow-Origin", "Cache-Control", "Allow", "Content-Length"):
            assert front[1].get(name) == behind[1].get(name), name
        assert front[1]["X-Content-Type-Options"] == "nosniff"
        # Served past the handler's middleware: no page policy on a JSON answer.
        assert "Content-Security-Policy" in behind[1]
        assert "Content-Security-Policy" not in front[1]
        statuses.append(int(front[0][:3]))
    assert statuses == [200, 200, 200, 401, 401, 400, 404, 204, 405]
    assert json.loads(wsgi_call(application, *asked[0][:4], **basic())[2])["variant"] == "A"
    assert Decision.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_decision_on_a_kept_connection_the_server_dropped_is_answered_on_a_new_one(hero):
    """The visitor's read stands for Django's health check (selectors._visitor_row_checked):
    a connection killed between requests is replaced, not answered with a 503."""
    import psycopg2
    from django.db import connection

    from cdp.wsgi import application

    _, anonymous_id = visitor()
    known = f"placement=home_hero&anonymousId={anonymous_id}&path=/shop/x"
    first = wsgi_call(application, "GET", "/v1/decide", known, **basic())
    assert first[0] == "200 OK"
    # A second request's read goes first on the kept connection, unchecked until then.
    repeat = wsgi_call(application, "GET", "/v1/decide", known, **basic())
    assert repeat[2] == first[2]
    killed = connection.connection.get_backend_pid()
    admin = psycopg2.connect(**connection.get_connection_params())
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [killed])
    finally:
        admin.close()
    again = wsgi_call(application, "GET", "/v1/decide", known, **basic())
    assert again[0] == "200 OK" and again[2] == first[2]  # the same sticky decision
    assert connection.connection.get_backend_pid() != killed
