"""A real Celery worker builds an access export that a CRM requested through the API."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from cdp.celery import app as celery_app
from consent.models import PrivacyRequest, RequestStatus
from identity.models import Identity
from profiles.models import Event, Profile

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.REDIS_URL,
        reason="a real worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
]


def _database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(transactional_db, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge("default")
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DB_CONN_MAX_AGE": "0",
        "MEDIA_ROOT": str(tmp_path),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cdp",
            "worker",
            "-Q",
            "default",
            "--concurrency",
            "1",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        celery_app.conf.task_always_eager = True


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
    api = api_client_with_scopes("privacy:write", "privacy:read")
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
