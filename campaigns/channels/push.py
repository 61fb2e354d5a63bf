"""Mobile push through a provider webhook: the message in FCM HTTP v1's shape
(`{"message": {"token", "notification": {"title", "body"}, "data"}}`), POSTed to the channel's
URL and signed like every webhook (Standard Webhooks), to the device token the person's SDK
reported in `context.device.token` (Segment spec).

A provider answering 404 or 410, or naming the token UNREGISTERED or NOT_FOUND (FCM's error
codes), says the app was uninstalled: the send fails for good and the token is removed from
the profile, so no later send tries it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from campaigns import messages
from campaigns.channels.base import Transport, TransportError
from campaigns.channels.sending import concurrent_sends
from campaigns.channels.webhook import answer_check, rendered_message, signed_post
from profiles.services import profile_device_token_forget

if TYPE_CHECKING:
    from access.outbound import OutboundResponse
    from campaigns.models import Channel, Delivery
    from profiles.models import Profile

# FCM v1's error codes for a token that no longer exists.
GONE_CODES = (b"UNREGISTERED", b"NOT_FOUND")


def device_token(profile: Profile) -> str | None:
    context = profile.context if isinstance(profile.context, dict) else {}
    device = context.get("device")
    token = device.get("token") if isinstance(device, dict) else None
    return token if isinstance(token, str) and 0 < len(token) <= 4096 else None


def _token_gone(response: OutboundResponse) -> bool:
    if response.status in (404, 410):
        return True
    return 400 <= response.status < 500 and any(code in response.body for code in GONE_CODES)


class PushTransport(Transport):
    purpose = "push"

    def recipient(self, profile: Profile) -> str | None:
        return device_token(profile)

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._gone: list[tuple[int, str]] = []  # (profile id, token) reported gone

    def send_batch(self, deliveries: Sequence[Delivery]) -> list[TransportError | None]:
        return concurrent_sends(deliveries, self._payload, self._post)

    def send(self, delivery: Delivery) -> None:
        self._post(delivery, self._payload(delivery))

    def _payload(self, delivery: Delivery) -> dict[str, Any]:
        token = device_token(delivery.profile)
        if token is None:
            raise TransportError("the person has no device token", permanent=True)
        message: dict[str, Any] = rendered_message(delivery)
        data = {key: str(value) for key, value in (message.get("data") or {}).items()}
        if message.get("url"):
            data["url"] = str(message["url"])
        return {
            "message": {
                "token": token,
                "notification": {"title": message["title"], "body": message["body"]},
                "data": {**data, "cdp_delivery": str(delivery.pk)},
            }
        }

    def _post(self, delivery: Delivery, payload: dict[str, Any]) -> None:
        webhook_id = f"msg_cdp_{delivery.pk}"
        response = signed_post(self.channel, webhook_id=webhook_id, payload=payload)
        if _token_gone(response):
            # 410 from a push provider means this token, not the endpoint: the channel stays.
            self._gone.append((delivery.profile.pk, payload["message"]["token"]))
            raise TransportError(f"the device token is gone ({response.status})", gone=True)
        answer_check(response)
        delivery.message_digest = messages.digest(payload["message"])
        delivery.provider_message_id = webhook_id

    def gone_forget(self) -> None:
        gone, self._gone = self._gone, []
        for profile_id, token in gone:
            profile_device_token_forget(profile_id=profile_id, token=token)
