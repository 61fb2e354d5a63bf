"""Staff roles (Django groups) and the decorators views use to declare who may see them."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

MARKETER = "marketer"
COMPLIANCE = "compliance"
ADMIN = "admin"
ROLES = (MARKETER, COMPLIANCE, ADMIN)


def user_roles(user: Any) -> set[str]:
    """The roles of a staff user; a superuser holds every role."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return set()
    if getattr(user, "api_key", None) is not None:
        return set()  # a call made with an API key (access.auth.ApiKeyUser): scopes, no roles
    if user.is_superuser:
        return set(ROLES)
    cached = getattr(user, "_cdp_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        user._cdp_roles = cached
    return cached


def has_role(user: Any, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def roles_required(*roles: str) -> Callable:
    """Page views declare their roles with this; anyone else gets 403 (or the login page)."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapped.allowed_roles = roles  # type: ignore[attr-defined]
        return wrapped

    return decorator


def roles_context(request: HttpRequest) -> dict[str, Any]:
    roles = user_roles(getattr(request, "user", None))
    return {
        "user_roles": roles,
        "is_marketer": MARKETER in roles,
        "is_compliance": COMPLIANCE in roles,
        "is_admin_role": ADMIN in roles,
    }
