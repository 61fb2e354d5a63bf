"""Browser push subscriptions: registered for a person by the site (through the API) when a
visitor allows notifications, removed when the browser unsubscribes or its push service
reports the subscription gone (campaigns.channels.web_push)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.db import transaction

from access.outbound import outbound_url_problem
from access.services import audit_record
from campaigns.models import PushSubscription
from profiles.models import Profile


class InvalidSubscription(ValueError):
    """The subscription cannot be used (the field and the reason, in `field` and the text)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _key_bytes(value: str, field: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise InvalidSubscription(field, "not base64url") from None


@transaction.atomic
def push_subscription_register(
    *, profile: Profile, endpoint: str, p256dh: str, auth: str, actor: Any
) -> PushSubscription:
    """Register (or move to this person) a browser's subscription. The endpoint must be one
    the platform may call (access.outbound); the keys must be a P-256 point and a 16-byte
    secret, as browsers give them."""
    problem = outbound_url_problem(endpoint)
    if problem:
        raise InvalidSubscription("endpoint", problem)
    point = _key_bytes(p256dh, "keys.p256dh")
    if len(point) != 65 or point[0] != 4:
        raise InvalidSubscription("keys.p256dh", "not an uncompressed P-256 public key")
    if len(_key_bytes(auth, "keys.auth")) != 16:
        raise InvalidSubscription("keys.auth", "not a 16-byte auth secret")
    subscription, _ = PushSubscription.objects.update_or_create(
        endpoint=endpoint, defaults={"profile": profile, "p256dh": p256dh, "auth": auth}
    )
    audit_record(
        actor=actor,
        action="push.subscribe",
        resource="campaigns",
        resource_id=subscription.pk,
        profile_id=profile.pk,
    )
    return subscription


@transaction.atomic
def push_subscription_delete(*, endpoint: str, actor: Any) -> bool:
    """Remove a subscription (the browser unsubscribed). Returns whether one existed."""
    subscription = PushSubscription.objects.filter(endpoint=endpoint).first()
    if subscription is None:
        return False
    audit_record(
        actor=actor,
        action="push.unsubscribe",
        resource="campaigns",
        resource_id=subscription.pk,
        profile_id=subscription.profile_id,
    )
    subscription.delete()
    return True
