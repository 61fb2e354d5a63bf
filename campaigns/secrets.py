"""Channel signing secrets: derived, never stored."""

from __future__ import annotations

import datetime as dt

from access.webhooks import signing_secret
from campaigns.models import Channel


def _derived(channel: Channel, salt: str) -> str:
    return signing_secret(namespace="campaigns.channel-secret", key=f"{channel.pk}:{salt}")


def channel_secret(*, channel: Channel) -> str:
    """The channel's signing secret (Standard Webhooks form, `whsec_` + base64 of 32 bytes).
    An HMAC keyed by SECRET_KEY over the channel and its salt, so a database dump alone does
    not reveal it; rotating draws a new salt (campaigns.services.channel_secret_rotate)."""
    return _derived(channel, channel.secret_salt)


def channel_signing_secrets(*, channel: Channel, now: dt.datetime) -> list[str]:
    """The secrets that sign a send now: the current one, and the previous one while a
    rotation's overlap lasts."""
    secrets = [channel_secret(channel=channel)]
    until = channel.previous_secret_until
    if channel.previous_secret_salt and until is not None and now < until:
        secrets.append(_derived(channel, channel.previous_secret_salt))
    return secrets
