"""Webhooks: a JSON POST signed with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
`webhook-signature`; the `standardwebhooks` package), through the guarded outbound client.

The body is `{"type": "campaign.message", "timestamp", "data": {"delivery", "campaign",
"profile", "message"}}`, where `message` is the send step's JSON with its strings rendered as
templates. `webhook-id` is the same on every attempt of one delivery, so a receiver can drop a
retry it already handled. 2xx is sent; 410 Gone disables the channel; other 4xx are permanent;
5xx, timeouts and lost connections are retried.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from access.outbound import OutboundError, OutboundRefused, outbound_post
from campaigns import definition, messages, selectors
from campaigns.channels.base import Transport, TransportError
from campaigns.secrets import channel_signing_secrets

if TYPE_CHECKING:
    from campaigns.models import Channel, Delivery
    from profiles.models import Profile

# Without a purpose of its own, a webhook carries marketing on the email purpose's consent.
DEFAULT_PURPOSE = "email_marketing"


def signed_post(channel: Channel, *, webhook_id: str, payload: dict[str, Any]) -> int:
    """POST `payload` as JSON to the channel's URL, signed with Standard Webhooks (with every
    secret that signs now) through the guarded client. Returns the status, which is 2xx: other
    answers raise TransportError (410 also disables the channel; 408, 429 and 5xx are
    retried, other 4xx are not)."""
    now = timezone.now()
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    signature = " ".join(
        Webhook(secret).sign(webhook_id, now, body)
        for secret in channel_signing_secrets(channel=channel, now=now)
    )
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "cdp-campaigns",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    try:
        response = outbound_post(channel.config["url"], body=body.encode(), headers=headers)
    except OutboundRefused as error:
        raise TransportError(f"refused: {error}", permanent=True) from None
    except OutboundError as error:
        raise TransportError(str(error)) from None
    if response.status == 410:
        raise TransportError("the receiver answered 410 Gone", disable=True)
    if not 200 <= response.status < 300:
        permanent = 400 <= response.status < 500 and response.status not in (408, 429)
        raise TransportError(f"the receiver answered {response.status}", permanent=permanent)
    return response.status


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


class WebhookTransport(Transport):
    def consent_purpose(self) -> str:
        return str(self.config.get("purpose") or DEFAULT_PURPOSE)

    def recipient(self, profile: Profile) -> str | None:
        return str(self.config["url"])

    def send(self, delivery: Delivery) -> None:
        data = {
            "delivery": delivery.pk,
            "campaign": delivery.campaign_id,
            "profile": delivery.profile.pk,
            "message": rendered_message(delivery),
        }
        payload = {
            "type": "campaign.message",
            "timestamp": timezone.now().isoformat(),
            "data": data,
        }
        webhook_id = f"msg_cdp_{delivery.pk}"
        signed_post(self.channel, webhook_id=webhook_id, payload=payload)
        delivery.message_digest = messages.digest(data)
        delivery.provider_message_id = webhook_id
