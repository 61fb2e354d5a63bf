import pytest
from django.core.management import CommandError, call_command

from access.models import ApiKey, Source
from access.selectors import api_key_for_token, source_for_write_key
from access.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def _last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_create_source_prints_the_write_key_alone_on_the_last_line(capsys):
    call_command("create_source", "iOS app")
    key = _last_line(capsys)
    source = Source.objects.get(name="iOS app")
    assert source_for_write_key(write_key=key) == source
    assert key not in source.write_key_hash  # only the digest is stored


def test_create_api_key_prints_a_key_that_authenticates_and_is_stored_hashed(capsys):
    call_command("create_api_key", "CRM", "--scopes", "profiles:read", "consents:write")
    key = _last_line(capsys)
    api_key = ApiKey.objects.get(name="CRM")
    assert api_key.scopes == ["consents:write", "profiles:read"]
    assert api_key_for_token(token=key) == api_key
    assert key not in api_key.key_hash


def test_create_api_key_refuses_an_unknown_scope():
    with pytest.raises(CommandError, match="unknown scope"):
        call_command("create_api_key", "CRM", "--scopes", "profiles:delete")


def test_a_revoked_api_key_no_longer_authenticates():
    issued = api_key_create(name="old", scopes=["profiles:read"])
    api_key_revoke(api_key=issued.record)
    assert api_key_for_token(token=issued.key) is None


def test_a_bad_bearer_key_gets_401(client):
    response = client.get("/api/schema/", HTTP_AUTHORIZATION="Bearer nope")
    assert response.status_code == 401


def test_dashboard_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_dashboard_refuses_a_user_without_a_role(staff_client, no_role_user):
    assert staff_client(no_role_user).get("/").status_code == 403


@pytest.mark.parametrize("role", ["marketer", "compliance", "admin_user"])
def test_dashboard_opens_for_every_role(staff_client, role, request):
    user = request.getfixturevalue(role)
    assert staff_client(user).get("/").status_code == 200


def test_healthz_reports_database_and_broker(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"


def test_metrics_are_in_prometheus_format(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"cdp_profiles" in response.content


def test_metrics_need_the_token_when_one_is_set(client, monkeypatch):
    monkeypatch.setenv("METRICS_TOKEN", "s3cret")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
