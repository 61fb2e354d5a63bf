"""Segment webhooks: recorded with the membership changes, sent after commit by a task."""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from segments.models import (
    Segment,
    WebhookDelivery,
)

log = logging.getLogger(__name__)

WEBHOOK_BATCH = 500
WEBHOOK_MAX_ATTEMPTS = 5


class TransientError(Exception):
    """A failure worth retrying (the receiver was down or answered 5xx)."""


def webhook_deliveries_record(
    segment: Segment, entered: list[int], exited: list[int], *, cause: str, at: dt.datetime
) -> None:
    from segments.tasks import webhook_deliver_task

    changes = [("enter", p) for p in entered] + [("exit", p) for p in exited]
    for start in range(0, len(changes), WEBHOOK_BATCH):
        chunk = changes[start : start + WEBHOOK_BATCH]
        delivery = WebhookDelivery.objects.create(
            segment=segment,
            url=segment.webhook_url,
            payload={
                "segment": {"id": segment.pk, "name": segment.name},
                "at": at.isoformat(),
                "cause": cause,
                "entered": [p for kind, p in chunk if kind == "enter"],
                "exited": [p for kind, p in chunk if kind == "exit"],
            },
        )
        delivery_id = delivery.pk
        transaction.on_commit(lambda d=delivery_id: webhook_deliver_task.delay(d))


def webhook_delivery_send(*, delivery_id: int) -> WebhookDelivery | None:
    """POST one recorded delivery. Idempotent: only a pending delivery is sent; a failure
    raises TransientError until the attempts run out, then the delivery is marked failed."""
    delivery = WebhookDelivery.objects.filter(
        pk=delivery_id, state=WebhookDelivery.State.PENDING
    ).first()
    if delivery is None:
        return None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
    delivery.attempts += 1
    body = json.dumps(delivery.payload).encode()
    request = urllib.request.Request(  # noqa: S310 - URLField validated to http(s)
        delivery.url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "cdp-segments/1"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except (urllib.error.URLError, OSError) as error:
        return _webhook_failed(delivery, f"connection failed: {error.__class__.__name__}")
    if 200 <= status < 300:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=WebhookDelivery.State.SENT, sent_at=timezone.now(), last_error=""
        )
        delivery.state = WebhookDelivery.State.SENT
        return delivery
    return _webhook_failed(delivery, f"HTTP {status}")


def _webhook_failed(delivery: WebhookDelivery, reason: str) -> WebhookDelivery:
    final = delivery.attempts >= WEBHOOK_MAX_ATTEMPTS
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        last_error=reason[:300],
        state=WebhookDelivery.State.FAILED if final else WebhookDelivery.State.PENDING,
    )
    log.warning("segment webhook %s attempt %s failed: %s", delivery.pk, delivery.attempts, reason)
    if not final:
        raise TransientError(reason)
    delivery.state = WebhookDelivery.State.FAILED
    return delivery
