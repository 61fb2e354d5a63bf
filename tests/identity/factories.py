"""Accepted events as ingestion stores them (profile unset, not processed), made directly so
these tests do not depend on the ingestion code; profiles as a CRM import leaves them."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from profiles.models import Event, Profile

BASE_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
_numbers = itertools.count(1)


def event_build(
    source,
    type: str = "track",
    *,
    event: str = "",
    user_id: str = "",
    anonymous_id: str = "",
    at: datetime | timedelta | None = None,
    properties: dict[str, Any] | None = None,
    traits: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    is_bot: bool = False,
    **payload_extra: Any,
) -> Event:
    """An unsaved Event; `at` is a datetime or an offset from BASE_TIME."""
    if at is None:
        at = BASE_TIME
    elif isinstance(at, timedelta):
        at = BASE_TIME + at
    message_id = f"msg-{next(_numbers)}"
    payload: dict[str, Any] = {
        "type": type,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        **({"userId": user_id} if user_id else {}),
        **({"anonymousId": anonymous_id} if anonymous_id else {}),
        **({"event": event} if event else {}),
        "properties": properties or {},
        "traits": traits or {},
        "context": context or {},
        **payload_extra,
    }
    return Event(
        source=source,
        message_id=message_id,
        type=type,
        event=event,
        user_id=user_id,
        anonymous_id=anonymous_id,
        timestamp=at,
        original_timestamp=at,
        sent_at=at,
        received_at=at,
        properties=properties or {},
        traits=traits or {},
        context=context or {},
        payload=payload,
        is_bot=is_bot,
    )


def event_make(source, type: str = "track", **kwargs: Any) -> Event:
    event = event_build(source, type, **kwargs)
    event.save()
    return event


def events_store(events: list[Event]) -> list[int]:
    return [e.pk for e in Event.objects.bulk_create(events)]


def profiles_store(traits: list[dict[str, Any]]) -> list[Profile]:
    """Profiles with these traits and nothing else (no identities, no events), in order."""
    return Profile.objects.bulk_create([Profile(traits=one) for one in traits])
