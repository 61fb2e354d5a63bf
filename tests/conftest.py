"""The fixed cast: one staff user per role, a user with no role, and factories for sources and
API keys. Tasks run inline unless a test starts a real worker (tests/cdp/test_worker.py)."""

import base64
import hmac
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings as django_settings
from django.contrib.auth.models import Group, User
from django.db import connection
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from access.accounts import MFA_REQUIRED_ROLES
from access.roles import ADMIN, COMPLIANCE, MARKETER
from access.services import api_key_create, source_create
from cdp.celery import app as celery_app

# Property tests are deterministic (the same examples on every run, CI included); set
# HYPOTHESIS_PROFILE=explore to search with fresh random examples while developing.
hypothesis_settings.register_profile(
    "deterministic", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile("explore", deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

PASSWORD = "correct-horse-battery-staple"
WRITE_KEY = "WRITE_KEY_test123"  # the key every SDK capture in tests/fixtures was made with


@pytest.fixture(autouse=True)
def _inline_tasks():
    celery_app.conf.task_always_eager = True
    yield


@pytest.fixture(autouse=True)
def _own_audit_anchors(settings, tmp_path):
    # Each test's database starts empty: anchors of an earlier test's chain would not match it.
    settings.AUDIT_ANCHOR_PATH = str(tmp_path / "audit-anchors")


@pytest.fixture(autouse=True)
def _fresh_cache():
    from django.core.cache import cache

    from consent.services.suppression import suppression_cache
    from profiles.ingestion import sources
    from profiles.services import rates_cache

    cache.clear()
    # Per-process copies too: a flushed database must not be answered from an earlier test's
    # suppressions, write keys or currency rates.
    suppression_cache.invalidate()
    sources._local_sources.clear()
    rates_cache.invalidate()
    yield


# The TOTP secret of every staff user of the cast who must have a second factor (admin,
# compliance); `totp_code(TOTP_SECRET)` is what their authenticator app would show now.
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def totp_code(secret: str, *, at: float | None = None) -> str:
    """RFC 6238 (SHA-1, 30-second steps, 6 digits), written out so tests do not lean on the
    implementation they check."""
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(base64.b32decode(secret), struct.pack(">Q", counter), "sha1").digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def _staff(username: str, role: str | None) -> User:
    user = User.objects.create_user(
        username=username, email=f"{username}@example.com", password=PASSWORD
    )
    if role:
        # get_or_create: a transactional test before this one flushed the groups the
        # migration created.
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    if role in MFA_REQUIRED_ROLES:
        TOTP.activate(user, TOTP_SECRET)
    return user


@pytest.fixture
def marketer(db) -> User:
    return _staff("marketer", MARKETER)


@pytest.fixture
def compliance(db) -> User:
    return _staff("compliance", COMPLIANCE)


@pytest.fixture
def admin_user(db) -> User:
    return _staff("admin", ADMIN)


@pytest.fixture
def no_role_user(db) -> User:
    return _staff("norole", None)


@pytest.fixture
def staff_client(client) -> Callable:
    """staff_client(user) -> a Django test client logged in as that user."""

    def login(user: User):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def admin_api(admin_user) -> APIClient:
    """The REST API as an admin, authentication forced: for tests of what the API does with
    input (who may call it has tests of its own)."""
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.fixture
def source(db):
    return source_create(name="Website", write_key=WRITE_KEY).record


@pytest.fixture
def api_client_with_scopes(db) -> Callable[..., APIClient]:
    """api_client_with_scopes("profiles:read", ...) -> a DRF client sending that key."""

    def make(*scopes: str) -> APIClient:
        issued = api_key_create(name="test key", scopes=list(scopes))
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.key}")
        return api

    return make


def _test_database_url() -> str:
    """The test database (pytest-django renamed it) as a URL for a subprocess's settings."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def celery_worker(
    *, queue: str, concurrency: int = 1, pool: str = "solo", env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    """A real `celery worker` subprocess on Redis and the test database, consuming `queue`
    (purged first); tasks stop running inline while it lives. Needs `transactional_db`."""
    celery_app.conf.task_always_eager = False
    with celery_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(queue)
    worker_env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": django_settings.REDIS_URL,
        "DB_CONN_MAX_AGE": "0",
        **(env or {}),
    }
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", "cdp", "worker", "-Q", queue),
            *("--concurrency", str(concurrency), "--pool", pool),
            *("--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "warning"),
        ],
        cwd=Path(__file__).resolve().parents[1],
        env=worker_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        celery_app.conf.task_always_eager = True
