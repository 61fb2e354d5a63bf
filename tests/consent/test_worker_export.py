"""A real Celery worker builds an access export that a CRM requested through the API."""

import json
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from consent.models import PrivacyRequest, RequestStatus
from identity.models import Identity
from profiles.models import Event, Profile
from tests.conftest import celery_worker

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.REDIS_URL,
        reason="a real worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
]


@pytest.fixture
def worker(transactional_db, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    with celery_worker(queue="default", env={"MEDIA_ROOT": str(tmp_path)}) as process:
        yield process


def test_a_real_worker_builds_the_access_export_with_progress(
    worker, source, api_client_with_scopes, settings
):
    from consent.defaults import defaults_install
    from consent.models import ConsentCategoryMapping, Purpose

    defaults_install(Purpose, ConsentCategoryMapping)  # the transactional flush removed them
    profile = Profile.objects.create(traits={"email": "export.me@example.com"})
    Identity.objects.create(kind="email", value="export.me@example.com", profile=profile)
    now = timezone.now()
    Event.objects.bulk_create(
        Event(
            source=source,
            message_id=f"x-{i}",
            type="track",
            event="Viewed",
            timestamp=now,
            received_at=now,
            profile=profile,
        )
        for i in range(40)
    )
    # The system that hands the export to the requester reads it whole: it needs `pii:read`.
    api = api_client_with_scopes("privacy:write", "privacy:read", "pii:read")
    response = api.post(
        "/api/v1/privacy-requests/",
        {"regulation_type": "ACCESS", "subject": {"email": "export.me@example.com"}},
        format="json",
    )
    assert response.status_code == 201
    request_id = response.json()["id"]

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        request = PrivacyRequest.objects.get(pk=request_id)
        if request.status not in (RequestStatus.INITIALIZED, RequestStatus.RUNNING):
            break
        if worker.poll() is not None:
            pytest.fail(worker.stdout.read().decode(errors="replace")[-3000:])
        time.sleep(0.2)
    assert request.status == RequestStatus.FINISHED, request.error
    assert request.progress == 100
    download = api.get(f"/api/v1/privacy-requests/{request_id}/export/")
    assert download.status_code == 200
    data = json.loads(b"".join(download.streaming_content))
    assert len(data["related"]["profiles.Event.profile"]) == 40
