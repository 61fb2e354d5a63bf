"""Helpers shared by the pages and the API: the caller's address, the audited export download."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404

from consent.models import PrivacyRequest
from consent.services import audit_record


def client_ip(request: Any) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says unless a proxy we trust
    # rewrites it, and an audit trail must not record a forged address.
    return request.META.get("REMOTE_ADDR") or None


def export_response(request: Any, privacy_request: PrivacyRequest) -> FileResponse:
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / privacy_request.export_file).resolve()
    if root not in path.parents or not path.is_file():
        raise Http404("export file is gone")
    audit_record(
        actor=request.user,
        action="export.download",
        resource="privacy",
        resource_id=privacy_request.pk,
        ip=client_ip(request),
    )
    return FileResponse(
        open(path, "rb"),
        as_attachment=True,
        filename=f"privacy-request-{privacy_request.pk}.json",
        content_type="application/json",
    )
