"""Real Celery workers on Redis and the test database: every worker killed during a wait loses
no journey and sends nothing twice once workers are back."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from campaigns.models import Delivery, Entry
from campaigns.tasks import deliveries_due_task, delivery_send_task, entries_due_task
from tests.campaigns.conftest import CART, cart_reminder, person, track
from tests.conftest import celery_worker

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(
        connection.vendor != "postgresql" or not settings.REDIS_URL,
        reason="a real worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
    ),
]


def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def test_workers_killed_during_a_wait_lose_nothing_and_send_nothing_twice(
    transactional_db, source, smtp, email_channel, make_campaign
):
    env = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(settings.EMAIL_PORT),
        "CAMPAIGN_QUIET_HOURS": "",
        "SITE_URL": "https://cdp.example.com",
    }
    body = cart_reminder(email_channel)
    body["steps"][0] = {"wait": {"seconds": 3}}
    make_campaign(body)
    ann = person(email_address="ann@example.com")

    with celery_worker(queue="default", env=env) as worker:
        track(source, ann, CART, at=timezone.now())
        _until(lambda: Entry.objects.filter(step_path=[1]).exists(), "the wait to be stored")
        os.killpg(worker.pid, signal.SIGKILL)  # every worker, mid-wait, no warm shutdown
        worker.wait()
    entry = Entry.objects.get()
    assert entry.status == Entry.Status.ACTIVE and entry.due_at is not None
    assert smtp.messages == [] and not Delivery.objects.exists()

    time.sleep(max(0.0, (entry.due_at - timezone.now()).total_seconds()))
    with celery_worker(queue="default", env=env):
        entries_due_task.delay()
        _until(lambda: len(smtp.messages) == 1, "the reminder to arrive")
        delivery = Delivery.objects.get()
        # Beat runs again, a send task is redelivered: nothing more goes out.
        entries_due_task.delay()
        deliveries_due_task.delay()
        delivery_send_task.delay(delivery.pk)
        time.sleep(3)
    assert len(smtp.to("ann@example.com")) == 1
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 1
