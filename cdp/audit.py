"""Audit rows for reads and writes of profiles whose views live below the consent app.

The profile pages and API are in `profiles`, which may not import `consent` (the layers run
campaigns → segments → identity → consent → profiles), so the edge records them: after a
successful response to one of these routes, one audit row names the profile by id.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from consent.services import audit_record
from consent.views_common import client_ip

# Routes that show or change one profile, named by their `profile_id` URL keyword.
AUDITED_PROFILE_ROUTES = {
    "profiles:detail",
    "profiles:timeline",
    "api-profile-detail",
    "api-profile-events",
}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class ProfileAccessAuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        match = request.resolver_match
        if match is None or not 200 <= response.status_code < 300:
            return response
        if match.view_name not in AUDITED_PROFILE_ROUTES or "profile_id" not in match.kwargs:
            return response
        profile_id = int(match.kwargs["profile_id"])
        audit_record(
            actor=getattr(request, "user", None),
            action="view" if request.method in SAFE_METHODS else "change",
            resource="profile",
            resource_id=profile_id,
            profile_id=profile_id,
            ip=client_ip(request),
            details={"route": match.view_name, "method": request.method},
        )
        return response
