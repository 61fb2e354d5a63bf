"""Display helpers for profiles and events. Values are returned as plain text: the templates
escape them (traits and properties are written by outside systems)."""

import json
from typing import Any

from django import template

from access.pii import pii_for

register = template.Library()

# Property keys worth showing on a timeline line, most telling first.
HIGHLIGHT_KEYS = (
    "revenue",
    "total",
    "value",
    "currency",
    "order_id",
    "name",
    "product_id",
    "sku",
    "category",
    "price",
    "quantity",
    "query",
    "title",
    "path",
    "url",
)
MAX_HIGHLIGHTS = 4
MAX_HIGHLIGHT_CHARS = 60


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


@register.filter
def event_title(event: Any) -> str:
    """What a reader calls the event: the track name, the page/screen name, or its type."""
    properties = event.properties if isinstance(event.properties, dict) else {}
    if event.type in ("track", "page", "screen") and event.event:
        return event.event
    if event.type == "page":
        return str(properties.get("title") or properties.get("path") or "Page view")
    if event.type == "screen":
        return "Screen view"
    return event.type.capitalize()


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= MAX_HIGHLIGHT_CHARS else text[: MAX_HIGHLIGHT_CHARS - 1] + "…"


@register.filter
def event_highlights(event: Any, user: Any = None) -> list[tuple[str, str]]:
    """A few (key, value) pairs from a track/page/screen event's properties, as `user` may see
    them (access.pii). Identify and group events show which traits they set, not the values:
    those are personal data."""
    if event.type in ("identify", "group"):
        traits = event.traits if isinstance(event.traits, dict) else {}
        return [("sets", ", ".join(sorted(map(str, traits))))] if traits else []
    properties = event.properties if isinstance(event.properties, dict) else {}
    properties = pii_for(user).document(properties)
    picked = [key for key in HIGHLIGHT_KEYS if properties.get(key) not in (None, "", [], {})]
    others = sorted(
        key
        for key, value in properties.items()
        if key not in picked and isinstance(value, str | int | float | bool) and value != ""
    )
    keys = (picked + others)[:MAX_HIGHLIGHTS]
    return [(str(key), _short(properties[key])) for key in keys]


@register.filter
def initials(text: Any) -> str:
    words = [word for word in str(text or "").replace("@", " ").split() if word[:1].isalnum()]
    return "".join(word[0] for word in words[:2]).upper() or "?"


@register.filter
def sorted_items(mapping: Any) -> list[tuple[str, Any]]:
    """A dict's items sorted by key. (A template's `.items` breaks on a key named "items".)"""
    if not isinstance(mapping, dict):
        return []
    return sorted(((str(key), value) for key, value in mapping.items()), key=lambda kv: kv[0])


@register.filter
def is_structured(value: Any) -> bool:
    return isinstance(value, dict | list)
