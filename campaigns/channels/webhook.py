"""Webhooks: a JSON POST signed with Standard Webhooks (access.webhooks), through the guarded
outbound client's connection pool.

The body is `{"type": "campaign.message", "timestamp", "data": {"delivery", "campaign",
"profile", "message"}}`, where `message` is the send step's JSON with its strings rendered as
templates. `webhook-id` is the same on every attempt of one delivery, so a receiver can drop a
retry it already handled. 2xx is sent; 410 Gone disables the channel; other 4xx are permanent;
5xx, timeouts and lost connections are retried.

A batch is rendered in the calling thread (rendering may read the database), then POSTed by
CAMPAIGN_SEND_CONCURRENCY threads sharing the pool: a receiver's latency, not our CPU, bounds
one connection, so a batch keeps several busy.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings
from django.utils import timezone

from access.outbound import OutboundError, OutboundRefused, OutboundResponse
from access.webhooks import webhook_post
from campaigns import definition, messages, selectors
from campaigns.channels.base import Transport, TransportError
from campaigns.secrets import channel_signing_secrets

if TYPE_CHECKING:
    from campaigns.models import Channel, Delivery
    from profiles.models import Profile

# Without a purpose of its own, a webhook carries marketing on the email purpose's consent.
DEFAULT_PURPOSE = "email_marketing"

Prepared = TypeVar("Prepared")


def signed_post(channel: Channel, *, webhook_id: str, payload: dict[str, Any]) -> OutboundResponse:
    """POST `payload` to the channel's URL, signed with every secret that signs now. Returns
    the response whatever its status; a refused URL or a failed connection raises
    TransportError (the first permanent, the second retried)."""
    now = timezone.now()
    try:
        return webhook_post(
            channel.config["url"],
            secrets=channel_signing_secrets(channel=channel, now=now),
            webhook_id=webhook_id,
            payload=payload,
            user_agent="cdp-campaigns",
            now=now,
        )
    except OutboundRefused as error:
        raise TransportError(f"refused: {error}", permanent=True) from None
    except OutboundError as error:
        raise TransportError(str(error)) from None


def answer_check(response: OutboundResponse) -> None:
    """2xx passes; 410 disables the channel; 408, 429 and 5xx are retried, other 4xx not."""
    status = response.status
    if status == 410:
        raise TransportError("the receiver answered 410 Gone", disable=True)
    if not 200 <= status < 300:
        permanent = 400 <= status < 500 and status not in (408, 429)
        raise TransportError(f"the receiver answered {status}", permanent=permanent)


def rendered_message(delivery: Delivery) -> Any:
    """The delivery's send-step message (JSON) with its strings rendered for the person."""
    step = definition.step_at(
        delivery.version.definition["steps"], definition.pointer_path(delivery.step)
    )
    context = selectors.delivery_context(delivery=delivery, profile=delivery.profile)
    try:
        return messages.render_json(
            definition.send_message(step["send"], delivery.variant), context
        )
    except messages.RenderError as error:
        raise TransportError(f"the message did not render: {error}", permanent=True) from None


def concurrent_sends(
    deliveries: Sequence[Delivery],
    prepare: Callable[[Delivery], Prepared],
    post: Callable[[Delivery, Prepared], None],
) -> list[TransportError | None]:
    """Each delivery prepared (rendered) here, in order, then posted by a few threads at once;
    the outcome of each, in order."""
    outcomes: list[TransportError | None] = [None] * len(deliveries)
    ready: list[tuple[int, Delivery, Prepared]] = []
    for index, delivery in enumerate(deliveries):
        try:
            ready.append((index, delivery, prepare(delivery)))
        except TransportError as error:
            outcomes[index] = error

    # Each thread takes the next delivery when it is done with one (a slow answer holds up
    # one thread, not a share of the chunk); one task per thread, not per delivery.
    pending = iter(ready)
    taking = threading.Lock()

    def send_all() -> None:
        while True:
            with taking:
                item = next(pending, None)
            if item is None:
                return
            index, delivery, prepared = item
            try:
                post(delivery, prepared)
            except TransportError as error:
                outcomes[index] = error

    threads = min(settings.CAMPAIGN_SEND_CONCURRENCY, len(ready))
    if threads <= 1:
        send_all()
    else:
        pool = _sending_threads()
        for running in [pool.submit(send_all) for _ in range(threads)]:
            running.result()
    return outcomes


_threads_lock = threading.Lock()
_threads: tuple[tuple[int, int], ThreadPoolExecutor] | None = None


def _sending_threads() -> ThreadPoolExecutor:
    """The process's CAMPAIGN_SEND_CONCURRENCY sending threads, started once (threads started
    for every chunk cost more CPU than the posts themselves). Keyed by the process, since a
    forked worker does not inherit its parent's threads."""
    global _threads
    key = (os.getpid(), settings.CAMPAIGN_SEND_CONCURRENCY)
    with _threads_lock:
        if _threads is None or _threads[0] != key:
            if _threads is not None and _threads[0][0] == key[0]:
                _threads[1].shutdown(wait=False)
            pool = ThreadPoolExecutor(key[1], thread_name_prefix="campaign-send")
            _threads = (key, pool)
        return _threads[1]


class WebhookTransport(Transport):
    def consent_purpose(self) -> str:
        return str(self.config.get("purpose") or DEFAULT_PURPOSE)

    def recipient(self, profile: Profile) -> str | None:
        return str(self.config["url"])

    def send_batch(self, deliveries: Sequence[Delivery]) -> list[TransportError | None]:
        return concurrent_sends(deliveries, self._payload, self._post)

    def send(self, delivery: Delivery) -> None:
        self._post(delivery, self._payload(delivery))

    def _payload(self, delivery: Delivery) -> dict[str, Any]:
        data = {
            "delivery": delivery.pk,
            "campaign": delivery.campaign_id,
            "profile": delivery.profile.pk,
            "message": rendered_message(delivery),
        }
        return {"type": "campaign.message", "timestamp": timezone.now().isoformat(), "data": data}

    def _post(self, delivery: Delivery, payload: dict[str, Any]) -> None:
        webhook_id = f"msg_cdp_{delivery.pk}"
        answer_check(signed_post(self.channel, webhook_id=webhook_id, payload=payload))
        delivery.message_digest = messages.digest(payload["data"])
        delivery.provider_message_id = webhook_id
