"""Channel signing secrets: derived, never stored."""

from __future__ import annotations

import datetime as dt

from access.webhooks import signing_secret, signing_secrets
from campaigns.models import Channel

NAMESPACE = "campaigns.channel-secret"


def channel_secret(*, channel: Channel) -> str:
    """The channel's signing secret (Standard Webhooks form, `whsec_` + base64 of 32 bytes).
    An HMAC keyed by SECRET_KEY over the channel and its salt, so a database dump alone does
    not reveal it; rotating draws a new salt (campaigns.services.channel_secret_rotate)."""
    return signing_secret(namespace=NAMESPACE, key=f"{channel.pk}:{channel.secret_salt}")


def channel_signing_secrets(*, channel: Channel, now: dt.datetime) -> list[str]:
    """The secrets that sign a send now: the current one, and the previous one while a
    rotation's overlap lasts."""
    return signing_secrets(
        namespace=NAMESPACE,
        owner_id=channel.pk,
        salt=channel.secret_salt,
        previous_salt=channel.previous_secret_salt,
        previous_until=channel.previous_secret_until,
        now=now,
    )
