"""Signed links in sent messages: the open pixel, click redirects, the unsubscribe link.

Each token is signed with SECRET_KEY (django.core.signing, one salt per purpose), so nobody can
forge a click, an open or an unsubscribe for another delivery, nor turn the redirect into an
open redirect to a URL the message never held. Tokens do not expire: an unsubscribe link in a
year-old email must still work.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

_OPEN = "campaigns.open"
_CLICK = "campaigns.click"
_UNSUBSCRIBE = "campaigns.unsubscribe"


def _absolute(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def open_url(*, delivery_id: int) -> str:
    token = signing.dumps(delivery_id, salt=_OPEN)
    return _absolute(reverse("campaigns-public:open", args=[token]))


def click_url(*, delivery_id: int, url: str, slot: str = "") -> str:
    """`slot`: the link is an item of that recommendation block (campaigns.recommended), so
    its click counts for the block and the model run that served it."""
    value: list[int | str] = [delivery_id, url, slot] if slot else [delivery_id, url]
    token = signing.dumps(value, salt=_CLICK, compress=True)
    return _absolute(reverse("campaigns-public:click", args=[token]))


def unsubscribe_url(*, delivery_id: int) -> str:
    token = signing.dumps(delivery_id, salt=_UNSUBSCRIBE)
    return _absolute(reverse("campaigns-public:unsubscribe", args=[token]))


def open_token_read(token: str) -> int | None:
    try:
        value = signing.loads(token, salt=_OPEN)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None


def click_token_read(token: str) -> tuple[int, str, str] | None:
    """(delivery id, url, recommendation slot or "") of a click link."""
    try:
        value = signing.loads(token, salt=_CLICK)
    except signing.BadSignature:
        return None
    if (
        isinstance(value, list)
        and len(value) in (2, 3)
        and isinstance(value[0], int)
        and all(isinstance(part, str) for part in value[1:])
        and value[1].startswith(("https://", "http://"))
    ):
        return value[0], value[1], value[2] if len(value) == 3 else ""
    return None


def unsubscribe_token_read(token: str) -> int | None:
    try:
        value = signing.loads(token, salt=_UNSUBSCRIBE)
    except signing.BadSignature:
        return None
    return value if isinstance(value, int) else None
