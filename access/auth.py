"""API authentication and permissions.

Systems call `/api/v1/` with `Authorization: Bearer <api key>`; staff use their session. Every
API view declares `resource` (the scope family, e.g. "profiles") and the staff roles it allows
for reading and writing; `ResourcePermission` enforces both. A view that declares nothing
falls back to `DenyAll`.
"""

import ipaddress
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from access import selectors
from access.models import ApiKey
from access.pii import PII_SCOPE
from access.roles import has_role

# Resources that API keys can be scoped to: one per family of API views (their `resource`).
RESOURCES = (
    "profiles",
    "identity",
    "consents",
    "privacy",
    "segments",
    "recommendations",
    "campaigns",
    "experiences",
    "audit",
)
# Plus `pii:read`, which is no resource: it lets a key see personal data unmasked in whatever
# its other scopes let it read (access.pii); without it every output path masks.
SCOPES = (
    *(f"{resource}:{access}" for resource in RESOURCES for access in ("read", "write")),
    PII_SCOPE,
)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        api_key = selectors.api_key_for_token(token=header[1].decode("latin-1"))
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        # One write per minute at most: last-used is informative, not an audit trail.
        now = timezone.now()
        if api_key.last_used_at is None or (now - api_key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return (ApiKeyUser(api_key), api_key)

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class ApiKeyUser:
    """The request.user of a call made with an API key: authenticated, holds no staff role."""

    is_authenticated = True
    is_active = True
    is_superuser = False
    is_staff = False
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.pk = None
        self.id = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class DenyAll(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return False


class ResourcePermission(permissions.BasePermission):
    """API key: needs `<resource>:read` for safe methods, `<resource>:write` otherwise.
    Staff session: needs one of the view's `read_roles` / `write_roles`."""

    message = "Your key or role does not allow this operation."

    def has_permission(self, request: Request, view: Any) -> bool:
        write = request.method not in permissions.SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            access = "write" if write else "read"
            return request.auth.has_scope(f"{view.resource}:{access}")
        roles = view.write_roles if write else view.read_roles
        return has_role(request.user, *roles)


class ApiKeyRateThrottle(throttling.SimpleRateThrottle):
    """Per API key (or per staff user); a 429 carries Retry-After.

    Counted as a sliding window estimated from two fixed windows of the rate's duration: the
    previous window's count, weighted by the share of it still inside the last `duration`,
    plus this window's. DRF's own throttle keeps the time of every request in the window as
    one cached list: at the default 6,000/min that is ~55 KB read and written back per
    request (~0.7 ms of CPU), and requests in parallel overwrite each other's list, so a key
    calling concurrently was not held to its rate. A counter is one atomic increment.
    """

    scope = "api_key"
    # What the last call saw, for wait(): (previous window's count, this window's count of
    # admitted requests, share of this window elapsed).
    counts: tuple[int, int, float] = (0, 0, 0.0)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        window, elapsed = divmod(self.timer() / self.duration, 1)
        current, previous = f"{self.key}:{int(window)}", f"{self.key}:{int(window) - 1}"
        before = self.cache.get(previous, 0)
        # Counted first, then judged: requests in parallel each see the others' counts.
        count = self._count(current)
        self.counts = (before, count, elapsed)
        if before * (1 - elapsed) + count > self.num_requests:
            self.cache.decr(current)  # a refused request does not count
            self.counts = (before, count - 1, elapsed)
            return False
        return True

    def _count(self, key: str) -> int:
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request
            if self.cache.add(key, 1, timeout=2 * self.duration):
                return 1
            return self.cache.incr(key)  # another request added it meanwhile

    def wait(self) -> float:
        """Seconds until one more request fits the rate, if nothing more is sent."""
        previous, current, elapsed = self.counts
        room = self.num_requests - 1
        if current > room:
            # Not in this window; in the next one, once enough of this one has slid out.
            return (1 - elapsed + 1 - room / current) * self.duration
        # previous > 0 here: its weighted share is what fills the rate.
        share = (1 - (room - current) / previous) - elapsed
        return max(1.0, share * self.duration)


def client_ip(request: Any) -> str | None:
    """The caller's address: REMOTE_ADDR, or, behind `TRUSTED_PROXY_COUNT` proxies of ours,
    the address the outermost of them saw (the count-th entry of X-Forwarded-For from the
    right; entries left of it are whatever the client wrote, and an audit trail or a rate
    limit must not take a forged address)."""
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [hop for hop in hops if hop]
        if len(hops) >= trusted:
            try:
                return str(ipaddress.ip_address(hops[-trusted]))
            except ValueError:
                pass
    return request.META.get("REMOTE_ADDR") or None
