"""Webhooks: a JSON POST signed with Standard Webhooks (access.webhooks), through the guarded
outbound client's connection pool.

The body is `{"type": "campaign.message", "timestamp", "data": {"delivery", "campaign",
"profile", "message"}}`, where `message` is the send step's JSON with its strings rendered as
templates. `webhook-id` is the same on every attempt of one delivery, so a receiver can drop a
retry it already handled. 2xx is sent; 410 Gone disables the channel; other 4xx are permanent;
5xx, timeouts and lost connections are retried.

A batch is rendered in the calling thread (rendering may read the database), then POSTed by
CAMPAIGN_SEND_CONCURRENCY threads sharing the pool, chunk after chunk, the next chunk posted
while the delivery path records the previous one's outcomes (campaigns.channels.sending).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from access.outbound import OutboundError, OutboundRefused, OutboundResponse
from access.webhooks import webhook_post
from campaigns import definition, messages, selectors
from campaigns.channels.base import Transport, TransportError
from campaigns.channels.sending import concurrent_sends, pipelined_sends
from campaigns.secrets import channel_signing_secrets

if TYPE_CHECKING:
    from campaigns.models import Channel, Delivery
    from profiles.models import Profile

# Without a purpose of its own, a webhook carries marketing on the email purpose's consent.
DEFAULT_PURPOSE = "email_marketing"


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
    message = definition.send_message(step["send"], delivery.variant)
    context = selectors.delivery_context(
        delivery=delivery,
        profile=delivery.profile,
        unsubscribe_link=messages.reads(message, "unsubscribe_url"),
    )
    try:
        return messages.render_json(message, context)
    except messages.RenderError as error:
        raise TransportError(f"the message did not render: {error}", permanent=True) from None


class WebhookTransport(Transport):
    def consent_purpose(self) -> str:
        return str(self.config.get("purpose") or DEFAULT_PURPOSE)

    def recipient(self, profile: Profile) -> str | None:
        return str(self.config["url"])

    def send_batch(self, deliveries: Sequence[Delivery]) -> list[TransportError | None]:
        return concurrent_sends(deliveries, self._payload, self._post)

    def send_chunks(
        self, chunks: Iterable[Sequence[Delivery]]
    ) -> Generator[list[TransportError | None], None, None]:
        return pipelined_sends(chunks, self._payload, self._post)

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
