"""Who may use the profile API, throttling, and its OpenAPI description."""

import re

import pytest
from rest_framework.test import APIClient

from access.auth import ApiKeyRateThrottle
from tests.profiles.api_data import make_profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def profile():
    return make_profile(traits={"plan": "free"})


def _read(client, profile):
    return client.get(f"/api/v1/profiles/{profile.pk}/")


def _list(client, profile):
    return client.get("/api/v1/profiles/")


def _events(client, profile):
    return client.get(f"/api/v1/profiles/{profile.pk}/events/")


def _write(client, profile):
    return client.patch(
        f"/api/v1/profiles/{profile.pk}/", {"traits": {"plan": "pro"}}, format="json"
    )


READS = [_read, _list, _events]


def _session(user) -> APIClient:
    api = APIClient()
    api.force_login(user)
    return api


@pytest.mark.parametrize("call", READS)
@pytest.mark.parametrize("role", ["marketer", "compliance", "admin_user"])
def test_every_staff_role_reads_profiles(request, role, call, profile):
    assert call(_session(request.getfixturevalue(role)), profile).status_code == 200


@pytest.mark.parametrize("role", ["marketer", "admin_user"])
def test_marketers_and_admins_edit_traits(request, role, profile):
    assert _write(_session(request.getfixturevalue(role)), profile).status_code == 200
    profile.refresh_from_db()
    assert profile.traits == {"plan": "pro"}


def test_compliance_staff_cannot_edit_traits(compliance, profile):
    assert _write(_session(compliance), profile).status_code == 403
    profile.refresh_from_db()
    assert profile.traits == {"plan": "free"}


@pytest.mark.parametrize("call", [*READS, _write])
def test_a_user_without_a_role_is_refused(no_role_user, call, profile):
    assert call(_session(no_role_user), profile).status_code == 403


@pytest.mark.parametrize("call", [*READS, _write])
def test_an_anonymous_caller_is_refused_with_401(call, profile):
    response = call(APIClient(), profile)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("call", READS)
def test_a_profiles_read_key_reads(api_client_with_scopes, call, profile):
    assert call(api_client_with_scopes("profiles:read"), profile).status_code == 200


def test_a_profiles_read_key_cannot_write(api_client_with_scopes, profile):
    assert _write(api_client_with_scopes("profiles:read"), profile).status_code == 403
    profile.refresh_from_db()
    assert profile.traits == {"plan": "free"}


def test_a_profiles_write_key_writes(api_client_with_scopes, profile):
    assert _write(api_client_with_scopes("profiles:write"), profile).status_code == 200


@pytest.mark.parametrize("call", [*READS, _write])
@pytest.mark.parametrize(
    "scopes", [("identity:read",), ("segments:read", "segments:write"), ("consents:write",)]
)
def test_keys_without_a_profiles_scope_are_refused(api_client_with_scopes, scopes, call, profile):
    response = call(api_client_with_scopes(*scopes), profile)
    assert response.status_code == 403


@pytest.mark.parametrize("call", READS)
def test_a_profiles_write_key_alone_cannot_read(api_client_with_scopes, call, profile):
    assert call(api_client_with_scopes("profiles:write"), profile).status_code == 403


def test_a_key_over_its_rate_gets_429_with_retry_after(api_client_with_scopes, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "3/min"})
    # Half way through a minute's window: the wait below is then the same on every run.
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: 1_800_000_030.0)
    client = api_client_with_scopes("profiles:read")
    other = api_client_with_scopes("profiles:read")
    statuses = [client.get("/api/v1/profiles/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = client.get("/api/v1/profiles/")
    assert refused.status_code == 429
    # The rest of this window, then until 3 * (1 - f) <= 2 in the next: 30 s + 20 s.
    assert int(refused["Retry-After"]) == 50
    # The limit is per key: another key is still served.
    assert other.get("/api/v1/profiles/").status_code == 200


def test_the_openapi_schema_lists_the_profile_paths(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    for path in (
        "/api/v1/profiles/",
        "/api/v1/profiles/{profile_id}/",
        "/api/v1/profiles/{profile_id}/events/",
    ):
        assert path in schema["paths"], path
    assert set(schema["paths"]["/api/v1/profiles/{profile_id}/"]) >= {"get", "patch"}
    listed = schema["paths"]["/api/v1/profiles/"]["get"]["responses"]["200"]
    ref = listed["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(schema["components"]["schemas"][ref]["required"]) == {"results", "next"}
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_the_api_docs_page_loads_nothing_from_outside(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert urls, "the page references its assets"
    assert not [url for url in urls if re.match(r"(https?:)?//", url)], urls
    assert not re.search(r"https?://(?!testserver)", html)
    for url in urls:
        if url.startswith("/static/"):
            assert client.get(url).status_code == 200, url
