"""Outgoing webhooks, signed with Standard Webhooks (https://www.standardwebhooks.com/, the
`standardwebhooks` package): `webhook-id`, `webhook-timestamp` and `webhook-signature` headers,
`whsec_` secrets. Every webhook the platform sends (campaign channels, push providers, segment
webhooks) is signed and sent here, through the guarded outbound client.

A secret is derived, never stored: an HMAC keyed by SECRET_KEY over a namespace and the
owner's random salt, so a database dump alone does not reveal it; a new salt rotates it. While
a rotation's overlap lasts, the previous secret signs too (the header carries one signature per
secret), so a receiver can switch without refusing a delivery.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from django.utils import timezone
from django.utils.crypto import salted_hmac
from standardwebhooks.webhooks import Webhook

from access.outbound import OutboundResponse, outbound_post


def signing_secret(*, namespace: str, key: str) -> str:
    """The Standard Webhooks secret (`whsec_` + base64 of 32 bytes) of `key` in `namespace`."""
    digest = salted_hmac(namespace, key, algorithm="sha256").digest()
    return "whsec_" + base64.b64encode(digest).decode()


def signing_secrets(
    *,
    namespace: str,
    owner_id: int,
    salt: str,
    previous_salt: str,
    previous_until: dt.datetime | None,
    now: dt.datetime,
) -> list[str]:
    """The secrets that sign a send now: the owner's current one, and the previous one while
    a rotation's overlap lasts (receivers verify with either)."""
    secrets = [signing_secret(namespace=namespace, key=f"{owner_id}:{salt}")]
    if previous_salt and previous_until is not None and now < previous_until:
        secrets.append(signing_secret(namespace=namespace, key=f"{owner_id}:{previous_salt}"))
    return secrets


def webhook_post(
    url: str,
    *,
    secrets: Sequence[str],
    webhook_id: str,
    payload: Any,
    user_agent: str,
    now: dt.datetime | None = None,
    timeout: float | None = None,
) -> OutboundResponse:
    """POST `payload` as JSON to `url`, signed with every secret in `secrets`. `webhook_id`
    is the same on every attempt of one message, so a receiver can drop a retry it already
    handled. Raises OutboundRefused or OutboundError (access.outbound); any status returns."""
    now = now or timezone.now()
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    signature = " ".join(Webhook(secret).sign(webhook_id, now, body) for secret in secrets)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }
    return outbound_post(url, body=body.encode(), headers=headers, timeout=timeout)
