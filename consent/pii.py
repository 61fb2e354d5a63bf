"""PII masking for people who may not see it, pseudonyms for marketing exports.

Other apps' templates use `{% load consent_pii %}` then `{{ traits|mask_pii_traits:user }}`
(a dict with PII traits masked for this user) or `{% mask_pii value "email" %}` (one value,
masked unless the current user's role may see PII). Python code uses `pii_mask_traits(...)`,
and marketing exports `pii_pseudonym(...)`.
"""

import hashlib
import hmac
from typing import Any

from django.conf import settings

from access.roles import has_role


def pii_trait_names() -> set[str]:
    return {name.lower() for name in settings.PII_TRAITS}


def pii_is_trait(name: str) -> bool:
    return name.lower() in pii_trait_names()


def pii_can_see(user: Any) -> bool:
    return has_role(user, *settings.PII_VISIBLE_ROLES)


def pii_mask_value(value: Any) -> str:
    """'jane.doe@example.com' -> 'j•••@e•••.com', '+15551234567' -> '•••••••4567'."""
    if value is None or value == "":
        return ""
    text = str(value)
    if "@" in text:
        local, _, domain = text.partition("@")
        host, dot, tld = domain.rpartition(".")
        masked_domain = f"{host[:1]}•••{dot}{tld}" if dot else f"{domain[:1]}•••"
        return f"{local[:1]}•••@{masked_domain}"
    if len(text) <= 4:
        return "•" * len(text)
    digits = sum(c.isdigit() for c in text)
    if digits >= len(text) // 2:
        return "•" * (len(text) - 4) + text[-4:]
    return text[:1] + "•" * min(8, len(text) - 1)


def pii_mask_traits(traits: dict[str, Any] | None, *, user: Any) -> dict[str, Any]:
    """The traits as this user may see them: PII traits masked unless their role allows."""
    traits = traits or {}
    if pii_can_see(user):
        return dict(traits)
    names = pii_trait_names()
    return {k: (pii_mask_value(v) if k.lower() in names else v) for k, v in traits.items()}


def pii_pseudonym(value: Any) -> str:
    """A stable pseudonym (keyed hash): the same person gets the same token in every export,
    and nobody without PRIVACY_HASH_KEY can reverse it."""
    digest = hmac.new(
        settings.PRIVACY_HASH_KEY.encode(), f"pii:{value}".encode(), hashlib.sha256
    ).hexdigest()
    return f"pii_{digest[:20]}"
