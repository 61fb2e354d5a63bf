"""A profile's context: the last known device, OS, browser (parsed from `context.userAgent`),
locale, timezone, IP, location, campaign, referrer, app, library and session id, taken from the
most recent event; a key an event lacks keeps its earlier value."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django.db import transaction

from profiles.models import Profile


@lru_cache(maxsize=4096)
def user_agent_parse(ua: str) -> dict[str, Any]:
    """Browser, OS and device type of a user-agent string (cached: the same few repeat)."""
    from user_agents import parse

    parsed = parse(ua)
    if parsed.is_mobile:
        device_type = "mobile"
    elif parsed.is_tablet:
        device_type = "tablet"
    elif parsed.is_bot:
        device_type = "bot"
    else:
        device_type = "desktop"
    return {
        "browser": {"name": parsed.browser.family, "version": parsed.browser.version_string},
        "os": {"name": parsed.os.family, "version": parsed.os.version_string},
        "device_type": device_type,
    }


_CONTEXT_OBJECTS = ("device", "os", "app", "location", "campaign", "referrer", "library")
_CONTEXT_TEXTS = {"locale": "locale", "timezone": "timezone", "ip": "ip"}


def event_context(context: Mapping[str, Any], at: str) -> dict[str, Any]:
    """What one event's `context` tells about the person's current device and whereabouts."""
    found: dict[str, Any] = {}
    for name in _CONTEXT_OBJECTS:
        value = context.get(name)
        if isinstance(value, dict) and value:
            found[name] = value
    for name, key in _CONTEXT_TEXTS.items():
        value = context.get(name)
        if isinstance(value, str) and value:
            found[key] = value
    ua = context.get("userAgent")
    if isinstance(ua, str) and ua:
        parsed = user_agent_parse(ua[:1024])
        found["user_agent"] = ua
        found["browser"] = parsed["browser"]
        found.setdefault("os", parsed["os"])
        device = dict(found.get("device") or {})
        device.setdefault("type", parsed["device_type"])
        found["device"] = device
    page = context.get("page")
    if isinstance(page, dict) and isinstance(page.get("referrer"), str) and page["referrer"]:
        found.setdefault("referrer", {"url": page["referrer"]})
    found["session_id"] = session_id(context)
    found["updated_at"] = at
    return found


def session_id(context: Mapping[str, Any]) -> str | None:
    """An event's `context.sessionId` as text, or None when it carries none."""
    value = context.get("sessionId")
    if value is None or isinstance(value, bool | dict | list) or value == "":
        return None
    return str(value)


def profile_device_token_forget(*, profile_id: int, token: str) -> bool:
    """Drop `context.device.token` when it is still `token` (a push provider reported the app
    uninstalled); a newer token the SDK reported meanwhile stays. Returns whether it was."""
    with transaction.atomic():
        profile = Profile.objects.select_for_update().filter(pk=profile_id).first()
        context = profile.context if profile is not None else None
        device = context.get("device") if isinstance(context, dict) else None
        if profile is None or not isinstance(device, dict) or device.get("token") != token:
            return False
        device.pop("token")
        profile.save(update_fields=["context"])
    return True
