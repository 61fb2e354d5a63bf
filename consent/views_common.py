"""Shared by the privacy pages and API: the audited download of an access export."""

from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404

from access.services import audit_record_request
from consent.models import PrivacyRequest
from consent.services import privacy_request_export_delivered


def export_response(request: Any, privacy_request: PrivacyRequest) -> FileResponse:
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / privacy_request.export_file).resolve()
    if root not in path.parents or not path.is_file():
        raise Http404("export file is gone")
    audit_record_request(
        request=request,
        action="export.download",
        resource="privacy",
        resource_id=privacy_request.pk,
    )
    privacy_request_export_delivered(request=privacy_request)
    return FileResponse(
        open(path, "rb"),
        as_attachment=True,
        filename=f"privacy-request-{privacy_request.pk}.json",
        content_type="application/json",
    )
