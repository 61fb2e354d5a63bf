"""Mobile push through a provider webhook: the message in FCM HTTP v1's shape
(`{"message": {"token", "notification": {"title", "body"}, "data"}}`), POSTed to the channel's
URL and signed like every webhook (Standard Webhooks), to the device token the person's SDK
reported in `context.device.token` (Segment spec).

A provider answering 404 or 410 for a token says the app was uninstalled: the send fails for
good. (Removing the dead token from the profile is left to the profiles app; see the report.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from campaigns import messages
from campaigns.channels.base import Transport, TransportError
from campaigns.channels.webhook import rendered_message, signed_post

if TYPE_CHECKING:
    from campaigns.models import Delivery
    from profiles.models import Profile


def device_token(profile: Profile) -> str | None:
    context = profile.context if isinstance(profile.context, dict) else {}
    device = context.get("device")
    token = device.get("token") if isinstance(device, dict) else None
    return token if isinstance(token, str) and 0 < len(token) <= 4096 else None


class PushTransport(Transport):
    purpose = "push"

    def recipient(self, profile: Profile) -> str | None:
        return device_token(profile)

    def send(self, delivery: Delivery) -> None:
        token = device_token(delivery.profile)
        if token is None:
            raise TransportError("the person has no device token", permanent=True)
        message: dict[str, Any] = rendered_message(delivery)
        data = {key: str(value) for key, value in (message.get("data") or {}).items()}
        if message.get("url"):
            data["url"] = str(message["url"])
        payload = {
            "message": {
                "token": token,
                "notification": {"title": message["title"], "body": message["body"]},
                "data": {**data, "cdp_delivery": str(delivery.pk)},
            }
        }
        webhook_id = f"msg_cdp_{delivery.pk}"
        try:
            signed_post(self.channel, webhook_id=webhook_id, payload=payload)
        except TransportError as error:
            if "answered 404" in str(error):
                raise TransportError("the device token is gone (404)", permanent=True) from None
            if error.disable:  # 410 from a push provider means this token, not the endpoint
                raise TransportError("the device token is gone (410)", permanent=True) from None
            raise
        delivery.message_digest = messages.digest(payload["message"])
        delivery.provider_message_id = webhook_id
