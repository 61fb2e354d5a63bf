"""Shared by the privacy pages and API: the audited download of an access export."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse

from access.pii import pii_for
from access.services import audit_record_request
from consent.models import PrivacyRequest
from consent.services import privacy_request_export_delivered


def export_response(request: Any, privacy_request: PrivacyRequest) -> HttpResponse:
    """The export file as stored for callers who may see personal data (access.pii); for
    the others (a `privacy:read` key without `pii:read`), the same document masked."""
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
    filename = f"privacy-request-{privacy_request.pk}.json"
    pii = pii_for(request)
    if pii.visible:
        # Delivered to someone who may see it: the requester's contact is no longer needed.
        privacy_request_export_delivered(request=privacy_request)
        return FileResponse(
            open(path, "rb"), as_attachment=True, filename=filename, content_type="application/json"
        )
    masked = pii.export(json.loads(path.read_text(encoding="utf-8")))
    response = HttpResponse(
        json.dumps(masked, ensure_ascii=False, indent=2), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
