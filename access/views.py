"""Access management pages under /settings/: API keys and staff users with their roles.

Admins only. An API key is shown once, on the page answering the POST that created it.
"""

from allauth.usersessions.models import UserSession
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access import selectors, services
from access.auth import RESOURCES
from access.forms import ApiKeyCreateForm, StaffRolesForm, StaffUserCreateForm
from access.models import ApiKey
from access.pii import PII_SCOPE
from access.roles import ADMIN, ROLES, roles_required

ACCESS_ROLES = (ADMIN,)


def _scope_rows(form: ApiKeyCreateForm) -> list[dict]:
    chosen = set(form["scopes"].value() or [])
    return [
        {
            "resource": resource,
            "read": f"{resource}:read",
            "write": f"{resource}:write",
            "read_checked": f"{resource}:read" in chosen,
            "write_checked": f"{resource}:write" in chosen,
        }
        for resource in RESOURCES
    ] + [
        {
            "resource": "personal data, unmasked",
            "read": PII_SCOPE,
            "write": None,
            "read_checked": PII_SCOPE in chosen,
            "write_checked": False,
        }
    ]


def _api_keys_page(request: HttpRequest, form: ApiKeyCreateForm) -> HttpResponse:
    return render(
        request,
        "access/api_keys.html",
        {"api_keys": selectors.api_keys_list(), "form": form, "scope_rows": _scope_rows(form)},
    )


@require_GET
@roles_required(*ACCESS_ROLES)
def settings_home(request: HttpRequest) -> HttpResponse:
    return redirect("access:api-keys")


@require_GET
@roles_required(*ACCESS_ROLES)
def api_keys(request: HttpRequest) -> HttpResponse:
    return _api_keys_page(request, ApiKeyCreateForm())


@require_POST
@roles_required(*ACCESS_ROLES)
def api_key_create(request: HttpRequest) -> HttpResponse:
    form = ApiKeyCreateForm(request.POST)
    if not form.is_valid():
        return _api_keys_page(request, form)
    issued = services.api_key_create(
        name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"], created_by=request.user
    )
    response = render(
        request, "access/key_issued.html", {"api_key": issued.record, "key": issued.key}
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@roles_required(*ACCESS_ROLES)
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = get_object_or_404(ApiKey, pk=key_id)
    services.api_key_revoke(api_key=api_key, actor=request.user)
    messages.success(request, f"API key “{api_key.name}” ({api_key.prefix}…) revoked.")
    return redirect("access:api-keys")


def _users_page(request: HttpRequest, form: StaffUserCreateForm) -> HttpResponse:
    return render(
        request, "access/users.html", {"users": selectors.staff_users_list(), "form": form}
    )


@require_GET
@roles_required(*ACCESS_ROLES)
def staff_users(request: HttpRequest) -> HttpResponse:
    return _users_page(request, StaffUserCreateForm())


@require_POST
@roles_required(*ACCESS_ROLES)
def staff_user_create(request: HttpRequest) -> HttpResponse:
    form = StaffUserCreateForm(request.POST)
    if not form.is_valid():
        return _users_page(request, form)
    user = services.staff_user_create(
        email=form.cleaned_data["email"],
        password=form.cleaned_data["password"],
        roles=form.cleaned_data["roles"],
        actor=request.user,
    )
    messages.success(request, f"{user.email} can now log in.")
    return redirect("access:users")


@require_http_methods(["GET", "POST"])
@roles_required(*ACCESS_ROLES)
def staff_user_roles(request: HttpRequest, user_id: int) -> HttpResponse:
    staff = get_object_or_404(User, pk=user_id)
    current = sorted(staff.groups.filter(name__in=ROLES).values_list("name", flat=True))
    if request.method == "POST":
        form = StaffRolesForm(request.POST)
        if form.is_valid():
            try:
                services.staff_roles_set(
                    user=staff, roles=form.cleaned_data["roles"], actor=request.user
                )
            except services.RoleChangeRefusedError as error:
                form.add_error("roles", str(error))
            else:
                messages.success(request, f"Roles of {staff.email or staff.username} saved.")
                return redirect("access:users")
    else:
        form = StaffRolesForm(initial={"roles": current})
    return render(
        request,
        "access/user_roles.html",
        {"staff": staff, "form": form, "current": current},
    )


@require_POST
@roles_required(*ROLES)
def session_end(request: HttpRequest, session_id: int) -> HttpResponse:
    """End one of the caller's own sessions (the sessions page, /accounts/sessions/); any
    role may, for their own sessions only."""
    session = get_object_or_404(UserSession, pk=session_id, user=request.user)
    services.staff_session_end(request=request, session=session)
    return redirect("usersessions_list")
