"""Staff accounts: allauth's adapters as this platform needs them, the MFA requirement for
roles that see personal data, and the audit rows of sign-ins and of MFA changes.

Rate limits key failed logins and password-reset mails on the pair (client address,
account), so a stranger who knows an email cannot lock its owner out: their failures count
against their own address only. The address is `access.auth.client_ip`, which honours
`TRUSTED_PROXY_COUNT`."""

import time
from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.signals import user_logged_in, user_logged_out
from allauth.core import ratelimit
from allauth.mfa import signals as mfa_signals
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from allauth.usersessions.models import UserSession
from django.conf import settings
from django.contrib.auth.signals import user_logged_in as django_user_logged_in
from django.contrib.auth.signals import user_login_failed  # sent by authenticate()
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from access.auth import client_ip
from access.roles import ADMIN, COMPLIANCE, has_role
from access.services import audit_record

# Roles that must sign in with a second factor; for the others (marketers) it is optional.
MFA_REQUIRED_ROLES = (ADMIN, COMPLIANCE)
# Authenticators that are a second factor by themselves (recovery codes only back them up).
SECOND_FACTORS = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


class StaffOnlyAccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def login(self, request: HttpRequest, user: Any) -> None:
        super().login(request, user)
        if mfa_required(user) and not mfa_enabled(user):
            request.session[MFA_SETUP_PENDING] = True

    def get_client_ip(self, request: HttpRequest) -> str:
        return client_ip(request) or super().get_client_ip(request)

    def _get_login_attempts_cache_key(self, request: HttpRequest, **credentials: Any) -> str:
        # allauth keys its per-account limit on the login alone ("5 failures lock the
        # email"); adding the client address makes it a per-(address, account) limit.
        account = super()._get_login_attempts_cache_key(request, **credentials)
        return f"{account}@{self.get_client_ip(request)}"

    def send_password_reset_mail(self, user: Any, email: str, context: dict) -> None:
        # The page answers the same either way (no account enumeration); a sender past the
        # per-(address, account) limit just gets no more mails for a while.
        if ratelimit.consume(
            self.request,
            action="reset_password_mail",
            key=f"{email.lower()}@{self.get_client_ip(self.request)}",
        ):
            super().send_password_reset_mail(user, email, context)


class AuditedUserSessionsAdapter(DefaultUserSessionsAdapter):
    def end_sessions(self, sessions: Any) -> None:
        sessions = list(sessions)
        super().end_sessions(sessions)
        for session in sessions:
            audit_record(
                actor=session.user,
                action="session.revoke",
                resource="staff",
                resource_id=session.user_id,
                details={"session": session.pk},
            )


def mfa_required(user: Any) -> bool:
    return has_role(user, *MFA_REQUIRED_ROLES)


def mfa_enabled(user: Any) -> bool:
    return Authenticator.objects.filter(user=user, type__in=SECOND_FACTORS).exists()


# Set on a session that signed in without the second factor its roles require.
MFA_SETUP_PENDING = "cdp.mfa_setup_pending"


class StaffMfaAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        # Whoever must have a second factor keeps at least one (add the new one first).
        if authenticator.type in SECOND_FACTORS and mfa_required(authenticator.user):
            others = Authenticator.objects.filter(
                user=authenticator.user, type__in=SECOND_FACTORS
            ).exclude(pk=authenticator.pk)
            return others.exists()
        return super().can_delete_authenticator(authenticator)


class MfaRequiredMiddleware:
    """A session that signed in as admin or compliance without a second factor (the login
    marks it, see `StaffOnlyAccountAdapter.login`) reaches only the pages that set one up (and
    log out): every other page sends it there, every API call answers 403. Other requests
    cost no query: the mark is in the session."""

    OPEN_PREFIXES = ("/accounts/", "/static/")

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and session.get(MFA_SETUP_PENDING):
            if mfa_enabled(request.user):
                del session[MFA_SETUP_PENDING]
            elif not request.path.startswith(self.OPEN_PREFIXES):
                return self._refuse(request)
        return self.get_response(request)

    @staticmethod
    def _refuse(request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse(
                {
                    "code": "mfa_required",
                    "message": "Set up two-factor authentication before using the API with "
                    "your session.",
                },
                status=403,
            )
        return redirect(f"{reverse('mfa_activate_totp')}?next={request.path}")


# Where a session keeps when its last-seen time was last written (a Unix time).
LAST_SEEN_WRITTEN = "cdp.last_seen_written"


class SessionLastSeenMiddleware:
    """Keeps each staff session's last-seen time (and address and browser) on its
    `UserSession` row for the sessions page, as allauth's `UserSessionsMiddleware` does with
    `USERSESSIONS_TRACK_ACTIVITY`, but writing at most once per
    `USERSESSIONS_LAST_SEEN_SECONDS` per session instead of on every request: the session
    remembers when it last wrote."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and session.session_key and request.user.is_authenticated:
            now = time.time()
            written = session.get(LAST_SEEN_WRITTEN)
            if written is None or now - written >= settings.USERSESSIONS_LAST_SEEN_SECONDS:
                UserSession.objects.create_from_request(request)
                session[LAST_SEEN_WRITTEN] = now
        return self.get_response(request)


def _last_seen_at_login(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    # A sign-in is the session's first sighting (allauth records its row then): the first
    # requests after it need not write again.
    if request is not None and hasattr(request, "session"):
        request.session[LAST_SEEN_WRITTEN] = time.time()


# --- audit rows for sign-ins and MFA changes (connected in AccessConfig.ready) -------------


def _audit_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    audit_record(
        actor=user,
        action="login",
        resource="staff",
        resource_id=user.pk,
        ip=client_ip(request),
    )


def _audit_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        audit_record(
            actor=user,
            action="logout",
            resource="staff",
            resource_id=user.pk,
            ip=client_ip(request),
        )


def _audit_login_failed(
    sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # The login typed is not recorded: it may be a mistyped password or someone's email.
    audit_record(
        actor=None,
        action="login.failed",
        resource="staff",
        ip=client_ip(request) if request is not None else None,
    )


def _audit_mfa(action: str) -> Any:
    def receiver(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        authenticator = kwargs.get("authenticator")
        audit_record(
            actor=user,
            action=action,
            resource="staff",
            resource_id=user.pk,
            ip=client_ip(request),
            details={"type": getattr(authenticator, "type", "")},
        )

    return receiver


AUDITED_SIGNALS = (
    (user_logged_in, _audit_login),
    (user_logged_out, _audit_logout),
    (user_login_failed, _audit_login_failed),
    (mfa_signals.authenticator_added, _audit_mfa("mfa.add")),
    (mfa_signals.authenticator_removed, _audit_mfa("mfa.remove")),
    (mfa_signals.authenticator_reset, _audit_mfa("mfa.reset")),
    (mfa_signals.authentication_failed, _audit_mfa("mfa.failed")),
)


def audit_receivers_connect() -> None:
    for n, (signal, receiver) in enumerate(AUDITED_SIGNALS):
        signal.connect(receiver, dispatch_uid=f"access.accounts.audit.{n}")
    # Django's signal, not allauth's: every way of signing in (the admin's, tests') marks it.
    django_user_logged_in.connect(_last_seen_at_login, dispatch_uid="access.accounts.last_seen")
