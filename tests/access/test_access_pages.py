"""Access management pages under /settings/: API keys and staff users (admins only)."""

import re

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from access.models import ApiKey
from access.roles import user_roles
from access.services import api_key_create
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

GET_PAGES = ["/settings/", "/settings/api-keys/", "/settings/users/", "/settings/users/{uid}/"]
POSTS = [
    ("/settings/api-keys/new/", {"name": "CRM", "scopes": ["profiles:read"]}),
    ("/settings/api-keys/{kid}/revoke/", {}),
    ("/settings/users/new/", {"email": "new@example.com", "password": "Long-enough-pw-9"}),
    ("/settings/users/{uid}/", {"roles": ["admin"]}),
]


@pytest.fixture
def existing_key(db):
    return api_key_create(name="existing", scopes=["profiles:read"])


def _fill(url: str, no_role_user, existing_key) -> str:
    return url.format(uid=no_role_user.pk, kid=existing_key.record.pk)


def _nothing_changed(no_role_user, existing_key) -> None:
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is None
    assert not User.objects.filter(email="new@example.com").exists()
    no_role_user.refresh_from_db()
    assert user_roles(User.objects.get(pk=no_role_user.pk)) == set()


@pytest.mark.parametrize("url", GET_PAGES)
def test_settings_pages_send_anonymous_visitors_to_the_login(
    client, no_role_user, existing_key, url
):
    response = client.get(_fill(url, no_role_user, existing_key))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(("url", "data"), POSTS)
def test_settings_actions_send_anonymous_visitors_to_the_login(
    client, no_role_user, existing_key, url, data
):
    response = client.post(_fill(url, no_role_user, existing_key), data)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    _nothing_changed(no_role_user, existing_key)


@pytest.mark.parametrize("url", GET_PAGES)
@pytest.mark.parametrize("role", ["marketer", "compliance", "no_role_user"])
def test_settings_pages_refuse_everyone_but_admins(
    staff_client, request, no_role_user, existing_key, url, role
):
    client = staff_client(request.getfixturevalue(role))
    assert client.get(_fill(url, no_role_user, existing_key)).status_code == 403


@pytest.mark.parametrize(("url", "data"), POSTS)
@pytest.mark.parametrize("role", ["marketer", "compliance", "no_role_user"])
def test_settings_actions_refuse_everyone_but_admins(
    staff_client, request, no_role_user, existing_key, url, data, role
):
    client = staff_client(request.getfixturevalue(role))
    assert client.post(_fill(url, no_role_user, existing_key), data).status_code == 403
    _nothing_changed(no_role_user, existing_key)


@pytest.mark.parametrize("url", GET_PAGES)
def test_admins_open_every_settings_page(staff_client, admin_user, no_role_user, existing_key, url):
    response = staff_client(admin_user).get(_fill(url, no_role_user, existing_key), follow=True)
    assert response.status_code == 200


def test_an_admin_creates_a_scoped_api_key_shown_once_that_works(staff_client, admin_user):
    client = staff_client(admin_user)
    response = client.post(
        "/settings/api-keys/new/",
        {"name": "CRM sync", "scopes": ["profiles:read", "identity:read"]},
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = re.search(r'id="api-key">([^<]+)<', response.content.decode()).group(1)
    record = ApiKey.objects.get(name="CRM sync")
    assert record.scopes == ["identity:read", "profiles:read"]
    assert record.created_by == admin_user
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/profiles/").status_code == 200
    listing = client.get("/settings/api-keys/").content.decode()
    assert key not in listing
    assert f"<code>{record.prefix}…</code>" in listing
    assert "identity:read" in listing
    row = re.search(r"<tr>\s*<td>CRM sync</td>.*?</tr>", listing, re.S).group(0)
    assert "never" not in row  # its last use, a moment ago, is shown


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"name": "CRM"}, "Pick at least one scope."),
        ({"name": "", "scopes": ["profiles:read"]}, "This field is required."),
        ({"name": "CRM", "scopes": ["profiles:delete"]}, "Select a valid choice"),
    ],
)
def test_a_bad_api_key_form_is_an_error_and_creates_nothing(staff_client, admin_user, data, error):
    response = staff_client(admin_user).post("/settings/api-keys/new/", data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_checked_scopes_survive_a_form_error(staff_client, admin_user):
    html = (
        staff_client(admin_user)
        .post("/settings/api-keys/new/", {"name": "", "scopes": ["segments:write"]})
        .content.decode()
    )
    assert re.search(r'value="segments:write"[^>]*checked', html)
    assert not re.search(r'value="segments:read"[^>]*checked', html)


def test_revoking_an_api_key_refuses_it_at_once(staff_client, admin_user, existing_key):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {existing_key.key}")
    assert api.get("/api/v1/profiles/").status_code == 200
    response = staff_client(admin_user).post(f"/settings/api-keys/{existing_key.record.pk}/revoke/")
    assert response.status_code == 302
    assert api.get("/api/v1/profiles/").status_code == 401
    assert "revoked" in staff_client(admin_user).get("/settings/api-keys/").content.decode()


def test_an_admin_creates_a_staff_user_who_can_log_in_with_the_roles(
    staff_client, admin_user, client
):
    response = staff_client(admin_user).post(
        "/settings/users/new/",
        {"email": " Maria@Example.com ", "password": "Long-enough-pw-9", "roles": ["marketer"]},
    )
    assert response.status_code == 302
    created = User.objects.get(email="maria@example.com")
    assert user_roles(created) == {"marketer"}
    client.logout()
    login = client.post(
        "/accounts/login/", {"login": "maria@example.com", "password": "Long-enough-pw-9"}
    )
    assert login.status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/settings/users/").status_code == 403


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"email": "not-an-email", "password": "Long-enough-pw-9"}, "Enter a valid email"),
        ({"email": "marketer@example.com", "password": "Long-enough-pw-9"}, "already exists"),
        ({"email": "new@example.com", "password": "short"}, "too short"),
        ({"email": "new@example.com", "password": "password123"}, "too common"),
        ({"email": "new@example.com", "password": ""}, "This field is required."),
        (
            {"email": "new@example.com", "password": "Long-enough-pw-9", "roles": ["root"]},
            "Select a valid choice",
        ),
    ],
)
def test_a_bad_staff_user_form_is_an_error_and_creates_nothing(
    staff_client, admin_user, marketer, data, error
):
    response = staff_client(admin_user).post("/settings/users/new/", data)
    assert response.status_code == 200
    assert error in response.content.decode()
    assert User.objects.count() == 2


def test_an_admin_sets_the_roles_of_a_user(staff_client, admin_user, marketer):
    response = staff_client(admin_user).post(
        f"/settings/users/{marketer.pk}/", {"roles": ["compliance", "admin"]}
    )
    assert response.status_code == 302
    assert user_roles(User.objects.get(pk=marketer.pk)) == {"compliance", "admin"}
    staff_client(admin_user).post(f"/settings/users/{marketer.pk}/", {})
    assert user_roles(User.objects.get(pk=marketer.pk)) == set()


def test_an_admin_cannot_remove_their_own_admin_role(staff_client, admin_user):
    response = staff_client(admin_user).post(
        f"/settings/users/{admin_user.pk}/", {"roles": ["marketer"]}
    )
    assert response.status_code == 200
    assert "cannot remove the admin role from yourself" in response.content.decode()
    assert user_roles(User.objects.get(pk=admin_user.pk)) == {"admin"}


def test_the_users_page_lists_users_with_their_roles(staff_client, admin_user, marketer):
    html = staff_client(admin_user).get("/settings/users/").content.decode()
    row = re.search(r"<tr>\s*<td>marketer@example.com.*?</tr>", html, re.S).group(0)
    assert '<span class="badge">marketer</span>' in row
    assert PASSWORD not in html


def test_the_settings_entry_shows_in_the_menu_for_admins_only(
    staff_client, marketer, admin_user, compliance
):
    assert 'href="/settings/"' in staff_client(admin_user).get("/").content.decode()
    assert 'href="/settings/"' not in staff_client(marketer).get("/").content.decode()
    assert 'href="/settings/"' not in staff_client(compliance).get("/").content.decode()


@pytest.mark.parametrize(
    ("url", "queries"),
    # session, user, roles; then keys with their creators | users, and their groups.
    [("/settings/api-keys/", 4), ("/settings/users/", 5)],
)
def test_settings_lists_run_a_fixed_number_of_queries(
    staff_client, admin_user, django_assert_num_queries, url, queries
):
    for n in range(6):
        api_key_create(name=f"key {n}", scopes=["profiles:read"], created_by=admin_user)
        staff = User.objects.create_user(username=f"staff{n}", email=f"staff{n}@example.com")
        staff.groups.add(*admin_user.groups.all())
    client = staff_client(admin_user)
    with django_assert_num_queries(queries):
        assert client.get(url).status_code == 200


def test_access_changes_are_audited_with_their_actor_and_no_secret(
    staff_client, admin_user, marketer
):
    from access.models import AuditLog

    client = staff_client(admin_user)
    response = client.post("/settings/api-keys/new/", {"name": "CRM", "scopes": ["profiles:read"]})
    key = re.search(r'id="api-key">([^<]+)<', response.content.decode()).group(1)
    record = ApiKey.objects.get(name="CRM")
    client.post(f"/settings/api-keys/{record.pk}/revoke/")
    client.post(f"/settings/users/{marketer.pk}/", {"roles": ["compliance"]})
    client.post(
        "/settings/users/new/",
        {"email": "new@example.com", "password": "Long-enough-pw-9", "roles": ["marketer"]},
    )
    rows = list(AuditLog.objects.order_by("id"))
    assert [row.action for row in rows] == [
        "apikey.create",
        "apikey.revoke",
        "staff.roles",
        "staff.create",
        "staff.roles",
    ]
    assert all(row.actor == admin_user for row in rows)
    assert rows[2].details == {"before": ["marketer"], "after": ["compliance"]}
    for row in rows:
        assert key not in str(row.details)
        assert "new@example.com" not in str(row.details) + row.resource_id
