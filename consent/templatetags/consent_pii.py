"""Template helpers for PII: see consent/pii.py."""

from typing import Any

from django import template

from consent.pii import pii_can_see, pii_is_trait, pii_mask_traits, pii_mask_value

register = template.Library()


@register.filter
def mask_pii_traits(traits: dict[str, Any] | None, user: Any) -> dict[str, Any]:
    """{{ profile.traits|mask_pii_traits:user }}"""
    return pii_mask_traits(traits, user=user)


@register.simple_tag(takes_context=True)
def mask_pii(context: template.Context, value: Any, trait_name: str = "email") -> Any:
    """{% mask_pii value "email" %}: the value, masked unless the user's role may see PII
    (or the trait is not one of PII_TRAITS)."""
    user = context.get("user") or getattr(context.get("request"), "user", None)
    if not pii_is_trait(trait_name) or pii_can_see(user):
        return value
    return pii_mask_value(value)
