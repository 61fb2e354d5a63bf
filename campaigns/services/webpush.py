"""Browser push subscriptions: registered for a person by the site (through the API) when a
visitor allows notifications, removed when the browser unsubscribes or its push service
reports the subscription gone (campaigns.channels.web_push)."""

from __future__ import annotations

import re
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


# The keys as browsers give them, in base64url (padding optional): an uncompressed P-256 point
# (65 bytes, the first 0x04) and a 16-byte auth secret. A pattern says exactly that, and the
# API documents it.
P256DH_PATTERN = r"^B[A-P][A-Za-z0-9_-]{85}={0,2}\Z"
AUTH_PATTERN = r"^[A-Za-z0-9_-]{22}={0,2}\Z"


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
    if not re.fullmatch(P256DH_PATTERN, p256dh):
        raise InvalidSubscription(
            "keys.p256dh", "not an uncompressed P-256 public key in base64url"
        )
    if not re.fullmatch(AUTH_PATTERN, auth):
        raise InvalidSubscription("keys.auth", "not a 16-byte auth secret in base64url")
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
