"""Segment webhooks: recorded with the membership changes, sent after commit by a task,
signed with Standard Webhooks and sent by the same sender as campaign webhooks
(access.webhooks, through the guarded outbound client)."""

from __future__ import annotations

import datetime as dt
import logging
from functools import partial

from celery.exceptions import Retry
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from access.outbound import OutboundError, OutboundRefused
from access.queueing import task_named
from access.webhooks import signing_secret, signing_secrets, webhook_post
from segments.models import Segment, WebhookDelivery, new_webhook_secret_salt
from segments.services.task_names import WEBHOOK_DELIVER_TASK

log = logging.getLogger(__name__)

WEBHOOK_BATCH = 500
WEBHOOK_MAX_ATTEMPTS = 5


# A rotated-out secret keeps signing beside the new one this long.
SECRET_OVERLAP = dt.timedelta(days=1)


class TransientError(Exception):
    """A failure worth retrying (the receiver was down or answered 5xx)."""


NAMESPACE = "segments.webhook-secret"


def webhook_secret(*, segment: Segment) -> str:
    """The segment's webhook signing secret (Standard Webhooks: `whsec_` + base64). Derived,
    not stored (access.webhooks.signing_secret): changing SECRET_KEY or rotating the salt
    changes it."""
    return signing_secret(namespace=NAMESPACE, key=f"{segment.pk}:{segment.webhook_secret_salt}")


def webhook_signing_secrets(*, segment: Segment, now: dt.datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous one during the overlap."""
    return signing_secrets(
        namespace=NAMESPACE,
        owner_id=segment.pk,
        salt=segment.webhook_secret_salt,
        previous_salt=segment.previous_webhook_secret_salt,
        previous_until=segment.previous_webhook_secret_until,
        now=now,
    )


def webhook_secret_rotate(*, segment: Segment) -> str:
    """A new signing secret for the segment, returned this once; the previous one keeps
    signing beside it for SECRET_OVERLAP."""
    segment.previous_webhook_secret_salt = segment.webhook_secret_salt
    segment.previous_webhook_secret_until = timezone.now() + SECRET_OVERLAP
    segment.webhook_secret_salt = new_webhook_secret_salt()
    segment.save(
        update_fields=[
            "webhook_secret_salt",
            "previous_webhook_secret_salt",
            "previous_webhook_secret_until",
            "updated_at",
        ]
    )
    return webhook_secret(segment=segment)


def webhook_deliveries_purge(*, before: dt.datetime, batch_size: int) -> dict[str, int]:
    """Retention hook (consent.services.retention_hook_register): finished deliveries created
    before `before` go, with the bodies they hold; pending ones are still to be sent."""
    finished = WebhookDelivery.objects.filter(created_at__lt=before).exclude(
        state=WebhookDelivery.State.PENDING
    )
    purged = 0
    while ids := list(finished.order_by("pk").values_list("pk", flat=True)[:batch_size]):
        purged += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
    return {WebhookDelivery._meta.label: purged} if purged else {}


def webhook_deliveries_record(
    *, segment: Segment, entered: list[int], exited: list[int], cause: str, at: dt.datetime
) -> None:
    """Record the segment's webhook deliveries of these changes, WEBHOOK_BATCH a delivery, each
    sent by a task after commit."""
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
        transaction.on_commit(partial(_webhook_deliver_queue, delivery.pk))


def _webhook_deliver_queue(delivery_id: int) -> None:
    try:
        task_named(WEBHOOK_DELIVER_TASK).delay(delivery_id)
    except Retry:
        # Only without a broker (dev mode: tasks run inline, CELERY_TASK_ALWAYS_EAGER), where a
        # retry raises Celery's Retry into whatever request changed the membership. The
        # delivery stays recorded with its error; that request must not fail for it.
        log.warning("segment webhook %s not delivered (tasks run inline)", delivery_id)


def webhook_delivery_send(*, delivery_id: int) -> WebhookDelivery | None:
    """POST one recorded delivery. Idempotent: only a pending delivery is sent; a failure
    raises TransientError until the attempts run out, then the delivery is marked failed."""
    delivery = (
        WebhookDelivery.objects.filter(pk=delivery_id, state=WebhookDelivery.State.PENDING)
        .select_related("segment")
        .first()
    )
    if delivery is None:
        return None
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
    delivery.attempts += 1
    now = timezone.now()
    try:
        # The same webhook-id on every attempt, so a receiver drops a retry it already had;
        # signed at each attempt, so a retry carries a fresh timestamp.
        status = webhook_post(
            delivery.url,
            secrets=webhook_signing_secrets(segment=delivery.segment, now=now),
            webhook_id=f"msg_seg_{delivery.pk}",
            payload=delivery.payload,
            user_agent="cdp-segments/1",
            now=now,
            timeout=10,
        ).status
    except OutboundRefused as error:
        return _webhook_failed(delivery, f"refused: {error}", permanent=True)
    except OutboundError as error:
        return _webhook_failed(delivery, f"connection failed: {error}")
    if 200 <= status < 300:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=WebhookDelivery.State.SENT, sent_at=timezone.now(), last_error=""
        )
        delivery.state = WebhookDelivery.State.SENT
        return delivery
    return _webhook_failed(delivery, f"HTTP {status}")


def _webhook_failed(
    delivery: WebhookDelivery, reason: str, *, permanent: bool = False
) -> WebhookDelivery:
    # A URL the platform may not call (access.outbound) fails at once: retrying cannot help.
    final = permanent or delivery.attempts >= WEBHOOK_MAX_ATTEMPTS
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        last_error=reason[:300],
        state=WebhookDelivery.State.FAILED if final else WebhookDelivery.State.PENDING,
    )
    log.warning("segment webhook %s attempt %s failed: %s", delivery.pk, delivery.attempts, reason)
    if not final:
        raise TransientError(reason)
    delivery.state = WebhookDelivery.State.FAILED
    return delivery
