"""Auditing staff and API access to a profile."""

from __future__ import annotations

from typing import Any

from access.services import audit_record_request
from profiles.models import Profile


def profile_access_record(*, request: Any, profile: Profile, action: str) -> None:
    """Audit one staff or API read ("view") or change of a profile, by id only: the audit log
    never holds an identifier, so an erasure need not touch it. The row names the route the
    request took."""
    audit_record_request(
        request=request,
        action=action,
        resource="profile",
        resource_id=profile.pk,
        profile_id=profile.pk,
        details={"route": request.resolver_match.view_name, "method": request.method},
    )
