"""Template helpers for personal data, all through the one gate (access.pii)."""

from typing import Any

from django import template

from access.pii import pii_for, pii_is_trait

register = template.Library()


def _viewer(context: template.Context) -> Any:
    return context.get("user") or getattr(context.get("request"), "user", None)


@register.filter
def mask_pii_traits(traits: dict[str, Any] | None, user: Any) -> dict[str, Any]:
    """{{ profile.traits|mask_pii_traits:user }}"""
    return pii_for(user).traits(traits)


@register.filter
def mask_pii_document(document: Any, user: Any) -> Any:
    """{{ event.context|mask_pii_document:user }}: identifiers, IPs, user agents, locations
    and nested traits masked (access.pii.PiiView.document)."""
    return pii_for(user).document(document)


@register.simple_tag(takes_context=True)
def mask_pii(context: template.Context, value: Any, kind: str = "email") -> Any:
    """{% mask_pii value "email" %}: an identifier (of this kind) or PII trait value, masked
    unless the viewer may see personal data. Values of other traits are shown as they are."""
    if not pii_is_trait(kind):
        return value
    return pii_for(_viewer(context)).value(value, kind=kind)


@register.filter
def mask_pii_text(text: Any, user: Any) -> str:
    """{{ delivery.last_error|mask_pii_text:user }}: email addresses in free text masked."""
    return pii_for(user).text(str(text or ""))
