"""Staff accounts: a second factor required for admin and compliance (optional for
marketers), TOTP with real codes, rate limits per (address, account) that a stranger cannot
turn against a user, password reset by email, audited sign-ins and MFA changes, and the
sessions page."""

import re
from datetime import timedelta

import pytest
from allauth.mfa.models import Authenticator
from allauth.usersessions.models import UserSession
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django.utils import timezone

from access.accounts import MFA_SETUP_PENDING
from access.auth import client_ip
from access.models import AuditLog
from access.roles import ADMIN
from tests.conftest import PASSWORD, TOTP_SECRET, totp_code

pytestmark = pytest.mark.django_db

STRANGER = "203.0.113.66"
OWNER = "198.51.100.7"


def sign_in(client: Client, email: str, password: str = PASSWORD, ip: str = OWNER):
    return client.post("/accounts/login/", {"login": email, "password": password}, REMOTE_ADDR=ip)


def test_an_admin_without_a_second_factor_sets_one_up_before_any_page(
    client, django_capture_on_commit_callbacks
):
    user = User.objects.create_user("newadmin", "newadmin@example.com", PASSWORD)
    user.groups.add(Group.objects.get_or_create(name=ADMIN)[0])
    assert sign_in(client, user.email).status_code == 302
    for path in ("/", "/profiles/", "/settings/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.url.startswith("/accounts/2fa/totp/activate/")
    api = client.get("/api/v1/audit/")
    assert api.status_code == 403 and api.json()["code"] == "mfa_required"

    # Changing a second factor asks for the password again, even right after signing in.
    assert client.get("/accounts/2fa/totp/activate/").url.startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    assert client.get("/accounts/2fa/totp/activate/").status_code == 200
    secret = client.session["mfa.totp.secret"]
    wrong = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})
    assert wrong.status_code == 200 and not Authenticator.objects.filter(user=user).exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert done.status_code == 302
    assert Authenticator.objects.filter(user=user, type="totp").exists()
    assert client.get("/").status_code == 200
    added = AuditLog.objects.filter(action="mfa.add", actor=user)
    assert sorted(row.details["type"] for row in added) == ["recovery_codes", "totp"]


def test_a_marketer_may_work_without_a_second_factor(client, marketer):
    sign_in(client, marketer.email)
    assert client.get("/").status_code == 200
    assert client.get("/accounts/2fa/").status_code == 200


def test_an_admin_signs_in_with_password_and_the_code_of_their_authenticator(client, admin_user):
    response = sign_in(client, admin_user.email)
    assert response.url.startswith("/accounts/2fa/authenticate/")
    assert client.get("/").status_code == 302  # not signed in yet
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "123456"}, REMOTE_ADDR=OWNER)
    assert wrong.status_code == 200
    right = client.post(
        "/accounts/2fa/authenticate/", {"code": totp_code(TOTP_SECRET)}, REMOTE_ADDR=OWNER
    )
    assert right.status_code == 302
    assert client.get("/").status_code == 200
    assert AuditLog.objects.filter(action="mfa.failed", actor=admin_user).count() == 1
    login = AuditLog.objects.get(action="login")
    assert (login.actor, login.ip) == (admin_user, OWNER)


def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out(client, marketer):
    stranger = Client()
    for _ in range(6):
        assert sign_in(stranger, marketer.email, "wrong-password", ip=STRANGER).status_code == 200
    refused = sign_in(stranger, marketer.email, PASSWORD, ip=STRANGER)
    assert refused.status_code == 200
    assert "too many" in refused.content.decode().lower()
    # The owner, from their own address, signs in at once.
    assert sign_in(client, marketer.email, PASSWORD, ip=OWNER).status_code == 302
    failed = AuditLog.objects.filter(action="login.failed")
    assert failed.count() >= 5 and set(failed.values_list("ip", flat=True)) == {STRANGER}
    assert not any(marketer.email in str(row.details) for row in failed)


def test_the_client_address_comes_from_trusted_proxies_only(settings):
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9, 10.0.0.1"
    )
    settings.TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.2"
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "10.0.0.1"
    settings.TRUSTED_PROXY_COUNT = 2
    assert client_ip(request) == "203.0.113.9"  # what the client wrote further left is ignored
    settings.TRUSTED_PROXY_COUNT = 5
    assert client_ip(request) == "10.0.0.2"  # fewer hops than proxies: not through them


def test_password_reset_by_email_and_its_limit_per_address_and_account(
    client, marketer, mailoutbox
):
    for _ in range(4):
        response = client.post(
            "/accounts/password/reset/", {"email": marketer.email}, REMOTE_ADDR=STRANGER
        )
        assert response.status_code == 302
    assert len(mailoutbox) == 3  # the stranger's fourth request sends nothing
    client.post("/accounts/password/reset/", {"email": marketer.email}, REMOTE_ADDR=OWNER)
    assert len(mailoutbox) == 4  # the owner still gets theirs
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/key/\S+)", mailoutbox[-1].body)
    assert link, mailoutbox[-1].body
    form_url = client.get(link.group(1)).url  # allauth moves the key into the session
    new_password = "a-new-and-long-passphrase-42"
    done = client.post(form_url, {"password1": new_password, "password2": new_password})
    assert done.status_code == 302
    assert sign_in(Client(), marketer.email, new_password).status_code == 302


def test_the_sessions_page_lists_and_ends_the_users_sessions(client, marketer):
    other = Client(HTTP_USER_AGENT="Other browser")
    sign_in(other, marketer.email, ip=STRANGER)
    sign_in(client, marketer.email)
    page = client.get("/accounts/sessions/")
    assert page.status_code == 200
    sessions = list(page.context["sessions"])
    assert len(sessions) == 2
    assert page.content.decode().count("End session") == 1  # not on this browser's row
    theirs = next(s for s in sessions if s.session_key != client.session.session_key)
    assert client.post(f"/accounts/sessions/{theirs.pk}/end/").status_code == 302
    assert other.get("/").status_code == 302  # signed out
    assert client.get("/").status_code == 200
    row = AuditLog.objects.get(action="session.revoke")
    assert row.actor == marketer


def test_the_sessions_page_shows_when_each_session_was_last_seen(client, marketer, settings):
    settings.USERSESSIONS_LAST_SEEN_SECONDS = 3600
    other = Client(HTTP_USER_AGENT="Other browser")
    sign_in(other, marketer.email, ip=STRANGER)
    theirs = marketer.usersession_set.get()
    two_hours_ago = timezone.now() - timedelta(hours=2)
    UserSession.objects.filter(pk=theirs.pk).update(last_seen_at=two_hours_ago)
    sign_in(client, marketer.email)
    row = re.search(
        r"<tr>\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>([^<]*)</td>\s*<td>" + STRANGER,
        client.get("/accounts/sessions/").content.decode(),
    )
    assert row and row.group(1) == "2\xa0hours ago"
    # Within the interval since the sign-in, requests write nothing; past it, the next does.
    other.get("/segments/", REMOTE_ADDR=STRANGER)
    assert UserSession.objects.get(pk=theirs.pk).last_seen_at == two_hours_ago
    settings.USERSESSIONS_LAST_SEEN_SECONDS = 0
    other.get("/segments/", REMOTE_ADDR=STRANGER)
    seen = UserSession.objects.get(pk=theirs.pk).last_seen_at
    assert seen > two_hours_ago + timedelta(hours=1)
    row = re.search(
        r"<tr>\s*<td[^>]*>[^<]*</td>\s*<td[^>]*>([^<]*)</td>\s*<td>" + STRANGER,
        client.get("/accounts/sessions/").content.decode(),
    )
    assert row and re.fullmatch(r"now|a second ago|\d+\xa0seconds ago", row.group(1))
    # Ending it still signs it out, and its next request records nothing.
    assert client.post(f"/accounts/sessions/{theirs.pk}/end/").status_code == 302
    assert other.get("/segments/", REMOTE_ADDR=STRANGER).status_code == 302
    assert not UserSession.objects.filter(pk=theirs.pk).exists()


def test_nobody_ends_someone_elses_session(client, marketer, compliance):
    sign_in(Client(), marketer.email)
    theirs = marketer.usersession_set.get()
    client.force_login(compliance)
    assert client.post(f"/accounts/sessions/{theirs.pk}/end/").status_code == 404
    assert marketer.usersession_set.exists()


def test_a_user_without_a_role_cannot_end_sessions_through_the_page(client, no_role_user):
    client.force_login(no_role_user)
    assert client.post("/accounts/sessions/1/end/").status_code == 403


def test_removing_the_last_second_factor_is_audited(
    client, marketer, django_capture_on_commit_callbacks
):
    from allauth.mfa.totp.internal.auth import TOTP

    TOTP.activate(marketer, TOTP_SECRET)
    sign_in(client, marketer.email)
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(TOTP_SECRET)})
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/accounts/2fa/totp/deactivate/")
    assert response.status_code == 302
    assert not Authenticator.objects.filter(user=marketer, type="totp").exists()
    assert AuditLog.objects.filter(action="mfa.remove", actor=marketer).exists()


def test_the_admin_site_signs_in_through_the_second_factor_too(client, admin_user):
    response = client.post("/admin/login/", {"username": admin_user.username, "password": PASSWORD})
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    assert client.get("/admin/").status_code == 302  # still signed out


def test_an_admin_cannot_remove_their_only_second_factor(client, admin_user):
    sign_in(client, admin_user.email)
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(TOTP_SECRET)})
    client.post("/accounts/reauthenticate/", {"password": PASSWORD})
    client.post("/accounts/2fa/totp/deactivate/")
    assert Authenticator.objects.filter(user=admin_user, type="totp").exists()


def test_a_session_signed_in_with_its_second_factor_is_not_held_back(client, admin_user):
    """The requirement is decided at login and kept in the session (no query per request)."""
    sign_in(client, admin_user.email)
    client.post("/accounts/2fa/authenticate/", {"code": totp_code(TOTP_SECRET)})
    assert MFA_SETUP_PENDING not in client.session
    assert client.get("/settings/api-keys/").status_code == 200
