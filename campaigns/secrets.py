"""Channel signing secrets: derived, never stored."""

from __future__ import annotations

import base64

from django.utils.crypto import salted_hmac

from campaigns.models import Channel


def channel_secret(*, channel: Channel) -> str:
    """The channel's signing secret (Standard Webhooks form, `whsec_` + base64 of 32 bytes).
    An HMAC keyed by SECRET_KEY over the channel and its salt, so a database dump alone does
    not reveal it; rotating draws a new salt (campaigns.services.channel_secret_rotate)."""
    digest = salted_hmac(
        "campaigns.channel-secret", f"{channel.pk}:{channel.secret_salt}", algorithm="sha256"
    ).digest()
    return "whsec_" + base64.b64encode(digest).decode()
