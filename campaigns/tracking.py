"""Signed links in sent messages: the open pixel, click redirects, the unsubscribe link.

Each token is signed with SECRET_KEY (django.core.signing, one salt per purpose), so nobody can
forge a click, an open or an unsubscribe for another delivery, nor turn the redirect into an
open redirect to a URL the message never held. Tokens do not expire: an unsubscribe link in a
year-old email must still work.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, reverse

_OPEN = "campaigns.open"
_CLICK = "campaigns.click"
_UNSUBSCRIBE = "campaigns.unsubscribe"


# Stands for the token when a route is reversed once: it matches `str`, and Django quotes
# nothing in it, as it quotes nothing in a signed token (URL-safe base64 and ":").
_PLACEHOLDER = "PLACEHOLDER"


@functools.lru_cache(maxsize=32)
def _around_token(route: str, site_url: str, script_prefix: str) -> tuple[str, str]:
    # Reversing costs more than signing: done once per route (and site and prefix), not per
    # link of every message a batch sends.
    before, after = reverse(route, args=[_PLACEHOLDER]).split(_PLACEHOLDER)
    return site_url.rstrip("/") + before, after


def _link(route: str, token: str) -> str:
    """The absolute URL of a public route for this token."""
    before, after = _around_token(route, settings.SITE_URL, get_script_prefix())
    return before + token + after


def open_url(*, delivery_id: int) -> str:
    return _link("campaigns-public:open", signing.dumps(delivery_id, salt=_OPEN))


def click_url(*, delivery_id: int, url: str, slot: str = "") -> str:
    """`slot`: the link is an item of that recommendation block (campaigns.recommended), so
    its click counts for the block and the model run that served it."""
    value: list[int | str] = [delivery_id, url, slot] if slot else [delivery_id, url]
    return _link("campaigns-public:click", signing.dumps(value, salt=_CLICK, compress=True))


def unsubscribe_url(*, delivery_id: int) -> str:
    return _link("campaigns-public:unsubscribe", signing.dumps(delivery_id, salt=_UNSUBSCRIBE))


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
