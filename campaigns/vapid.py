"""The platform's VAPID key (RFC 8292), which identifies it to browsers' push services.

From the environment when set (WEBPUSH_VAPID_PRIVATE_KEY: a PEM, or the raw key in base64url
as `vapid --gen` and pywebpush write it); otherwise generated once and kept in the database,
its private half encrypted (access.crypto). Pages give the public key to
`pushManager.subscribe({applicationServerKey})`; the API serves it.
"""

from __future__ import annotations

import base64
import functools
import time
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from py_vapid import Vapid02

from access.crypto import secret_decrypt, secret_encrypt
from campaigns.models import VapidKey

_PURPOSE = "campaigns.vapid"
# How long a signed VAPID token is valid (RFC 8292 allows at most 24 hours).
TOKEN_SECONDS = 12 * 3600


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _public_key(vapid: Vapid02) -> str:
    point = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(point)


def _from_setting(key: str) -> Vapid02:
    if "BEGIN" in key:
        return Vapid02.from_pem(key.encode())
    return Vapid02.from_string(key)


@functools.lru_cache(maxsize=4)
def _loaded(configured: str, stored: str) -> Vapid02:
    if configured:
        return _from_setting(configured)
    return Vapid02.from_pem(secret_decrypt(stored, purpose=_PURPOSE).encode())


def vapid_key() -> Vapid02:
    """The key pair, generated and stored (encrypted) the first time when none is set."""
    configured = settings.WEBPUSH_VAPID_PRIVATE_KEY
    if configured:
        return _loaded(configured, "")
    row = VapidKey.objects.order_by("pk").first()
    if row is None:
        vapid = Vapid02()
        vapid.generate_keys()
        VapidKey.objects.create(
            private_key_encrypted=secret_encrypt(vapid.private_pem().decode(), purpose=_PURPOSE),
            public_key=_public_key(vapid),
        )
        # Two processes generating at once both keep the first row: one key for everyone.
        row = VapidKey.objects.order_by("pk").first()
        assert row is not None
    return _loaded("", row.private_key_encrypted)


def vapid_public_key() -> str:
    """The application server key for `pushManager.subscribe` (base64url, uncompressed)."""
    return _public_key(vapid_key())


def vapid_authorization(*, endpoint: str, now: float | None = None) -> str:
    """The `Authorization: vapid t=..., k=...` header for a push to `endpoint`."""
    parts = urlsplit(endpoint)
    claims = {
        "aud": f"{parts.scheme}://{parts.netloc}",
        "exp": int((now or time.time()) + TOKEN_SECONDS),
        "sub": settings.WEBPUSH_VAPID_SUBJECT,
    }
    return str(vapid_key().sign(claims)["Authorization"])
