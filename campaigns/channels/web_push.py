"""Browser Web Push: each of the person's PushSubscriptions gets the message (`{"title",
"body", "url", "data"}` as JSON), encrypted for that browser with RFC 8291's aes128gcm
(pywebpush's encoder) and signed for its push service with the platform's VAPID key (RFC
8292), POSTed to the subscription's endpoint through the guarded outbound client.

A delivery is sent when one of the person's browsers took it. A push service answering 404 or
410 says that browser unsubscribed: the subscription is removed after the batch (and a person
left with none fails for good, "gone"); 429 and 5xx are retried; other 4xx are permanent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pywebpush import WebPusher

from access.outbound import OutboundError, OutboundRefused, outbound_post
from campaigns import messages, selectors
from campaigns.channels.base import Transport, TransportError
from campaigns.channels.sending import concurrent_sends
from campaigns.channels.webhook import rendered_message
from campaigns.models import PushSubscription
from campaigns.vapid import vapid_authorization

if TYPE_CHECKING:
    from campaigns.models import Channel, Delivery
    from profiles.models import Profile

# Kept by the push service for an offline browser unless the channel says otherwise (4 weeks
# is the most services keep anything).
DEFAULT_TTL = 24 * 3600


def encrypted_body(subscription: PushSubscription, payload: bytes) -> bytes:
    """`payload` encrypted for this browser (RFC 8291, aes128gcm)."""
    pusher = WebPusher(
        {
            "endpoint": subscription.endpoint,
            "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth},
        }
    )
    return bytes(pusher.encode(payload, "aes128gcm")["body"])


def _push_service(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


class WebPushTransport(Transport):
    purpose = "push"

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        self._subscriptions: dict[int, list[PushSubscription]] = {}
        # The VAPID header per push service (scheme://host), signed once per batch here, in
        # the calling thread: the sending threads touch neither the database nor the key.
        self._authorization: dict[str, str] = {}
        self._gone: list[int] = []  # ids of subscriptions the push service reported gone

    def recipients(self, profiles: Sequence[Profile]) -> dict[int, str | None]:
        found = selectors.push_subscriptions_of(profile_ids=[p.pk for p in profiles])
        return {p.pk: found[p.pk][0].endpoint if found.get(p.pk) else None for p in profiles}

    def send_batch(self, deliveries: Sequence[Delivery]) -> list[TransportError | None]:
        self._subscriptions = selectors.push_subscriptions_of(
            profile_ids={delivery.profile.pk for delivery in deliveries}
        )
        services = {
            _push_service(s.endpoint): s.endpoint
            for subscriptions in self._subscriptions.values()
            for s in subscriptions
        }
        self._authorization = {
            service: vapid_authorization(endpoint=endpoint)
            for service, endpoint in services.items()
        }
        return concurrent_sends(deliveries, self._payload, self._post)

    def send(self, delivery: Delivery) -> None:
        error = self.send_batch([delivery])[0]
        if error is not None:
            raise error

    def _payload(self, delivery: Delivery) -> bytes:
        message: dict[str, Any] = rendered_message(delivery)
        notification = {
            "title": message["title"],
            "body": message["body"],
            "url": message.get("url", ""),
            "data": {**(message.get("data") or {}), "cdp_delivery": str(delivery.pk)},
        }
        return json.dumps(notification, separators=(",", ":"), ensure_ascii=False).encode()

    def _post(self, delivery: Delivery, payload: bytes) -> None:
        subscriptions = self._subscriptions.get(delivery.profile.pk, [])
        if not subscriptions:
            raise TransportError("the person has no push subscription", permanent=True)
        taken, errors = 0, []
        for subscription in subscriptions:
            try:
                self._push(subscription, payload)
                taken += 1
            except TransportError as error:
                errors.append(error)
        if not taken:
            transient = [error for error in errors if not error.permanent]
            raise transient[0] if transient else errors[0]
        delivery.message_digest = messages.digest({"payload": payload.decode()})
        delivery.provider_message_id = f"webpush:{taken}"

    def _push(self, subscription: PushSubscription, payload: bytes) -> None:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Encoding": "aes128gcm",
            "TTL": str(self.config.get("ttl", DEFAULT_TTL)),
            "Urgency": "normal",
            "Authorization": self._authorization[_push_service(subscription.endpoint)],
        }
        body = encrypted_body(subscription, payload)
        try:
            response = outbound_post(subscription.endpoint, body=body, headers=headers)
        except OutboundRefused as error:
            raise TransportError(f"refused: {error}", permanent=True) from None
        except OutboundError as error:
            raise TransportError(str(error)) from None
        status = response.status
        if status in (404, 410):
            self._gone.append(subscription.pk)
            raise TransportError(f"the subscription is gone ({status})", gone=True)
        if not 200 <= status < 300:
            permanent = 400 <= status < 500 and status not in (408, 429)
            raise TransportError(f"the push service answered {status}", permanent=permanent)

    def gone_forget(self) -> None:
        gone, self._gone = self._gone, []
        if gone:
            PushSubscription.objects.filter(pk__in=gone).delete()
