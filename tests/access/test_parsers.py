"""The API's JSON parser answers 400 for documents the stack cannot hold: nesting deep enough to
exhaust recursion, NaN/Infinity/out-of-range numbers, strings with NUL or an unpaired surrogate.
Each of them used to be a 500, or stored and a 500 on every later read."""

import io

import pytest
from rest_framework.exceptions import ParseError

from access.parsers import MAX_DEPTH, JSONParser
from profiles.models import Profile


def parse(raw: str | bytes, encoding: str = "utf-8"):
    body = raw.encode() if isinstance(raw, str) else raw
    return JSONParser().parse(io.BytesIO(body), parser_context={"encoding": encoding})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("[" * 1000 + "]" * 1000, "nest at most"),
        ("[" * 100_000, "nest at most"),
        ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nest at most"),
        ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), "nest at most"),
        ('{"x": NaN}', "NaN"),
        ('{"x": -Infinity}', "Infinity"),
        ('{"x": 1e400}', "out of range"),
        ('{"x": "\\ud800"}', "unpaired surrogate \\ud800"),
        ('{"\\udfff": 1}', "unpaired surrogate \\udfff"),
        ('{"x": ["a\\u0000b"]}', "NUL (\\u0000) at /x/0."),
        ('{"a/b": {"c\\u0000": 1}}', "NUL (\\u0000) at /a~1b/c?."),
        ('"\\u0000"', "NUL (\\u0000)."),
        ("1" * 5000, "JSON parse error"),
        (b'{"x": "\xff"}', "JSON parse error"),
        ("{", "JSON parse error"),
    ],
)
def test_the_parser_refuses_what_the_stack_cannot_hold(raw, message):
    with pytest.raises(ParseError, match="JSON parse error") as refused:
        parse(raw)
    assert message in str(refused.value.detail)


def test_the_parser_keeps_ordinary_documents_exact():
    deep = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse(deep) is not None
    assert parse('{"n": 123456789012345678901234567890, "f": 1.5e308, "s": "\\ud83d\\ude00"}') == {
        "n": 123456789012345678901234567890,
        "f": 1.5e308,
        "s": "\U0001f600",
    }
    assert parse('{"é": "ü"}'.encode("latin-1"), encoding="latin-1") == {"é": "ü"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        "[" * 1000 + "]" * 1000,
        '{"traits": {"x": "\\ud800"}}',
        '{"traits": {"x": NaN}}',
        '{"traits": {"x": 1e400}}',
        '{"traits": {"x": "a\\u0000b"}}',
        '{"traits": {"a\\u0000": 1}}',
    ],
)
def test_a_profile_traits_patch_with_a_hostile_body_is_a_400(admin_api, body):
    profile = Profile.objects.create(traits={"x": "kept"})
    response = admin_api.patch(
        f"/api/v1/profiles/{profile.pk}/", body, content_type="application/json"
    )
    assert response.status_code == 400, response.content
    assert "JSON parse error" in response.json()["detail"]
    profile.refresh_from_db()
    assert profile.traits == {"x": "kept"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", "/api/v1/consents/", '{"subject": {"email": "a\\u0000@b.c"}}'),
        ("post", "/api/v1/consents/", '{"subject": {"email": "\\ud800@b.c"}}'),
        ("post", "/api/v1/privacy-requests/", '{"subject": {"email": "a\\u0000@b.c"}}'),
        (
            "post",
            "/api/v1/privacy-requests/",
            '{"regulation_type": "SUPPRESS", "subject": {"email": "a@b.c"},'
            ' "changes": {"traits": {"x": 1e400}}}',
        ),
        ("patch", "/api/v1/identity/settings/", '{"blocked_values": ["\\ud800"]}'),
        ("patch", "/api/v1/identity/settings/", '{"blocked_values": ["a\\u0000"]}'),
        ("post", "/api/v1/identity/merge/", "[" * 1000 + "]" * 1000),
        ("post", "/api/v1/segments/preview/", '{"definition": {"all": [NaN]}}'),
    ],
)
def test_every_json_endpoint_answers_a_hostile_body_with_a_400(admin_api, method, url, body):
    response = getattr(admin_api, method)(url, body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.django_db
def test_action_endpoints_still_take_an_empty_form_body(admin_api):
    response = admin_api.post("/api/v1/identity/merge/", {})
    assert response.status_code == 400
    assert "profiles" in response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["multipart", None])
@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/api/v1/consents/", {"subject": '{"email": "a\u0000@b.c"}', "purpose": "analytics"}),
        ("/api/v1/identity/merge/", {"profiles\u0000": "1"}),
    ],
)
def test_form_bodies_refuse_nul_too(admin_api, form, url, data):
    api = admin_api
    if form:
        response = api.post(url, data, format=form)
    else:
        from urllib.parse import urlencode

        response = api.post(url, urlencode(data), content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith("Form parse error - strings cannot contain NUL")
