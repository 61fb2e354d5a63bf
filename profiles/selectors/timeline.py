"""A profile's timeline: its events, newest first, by keyset pages."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q, QuerySet

from profiles.models import Event, Profile

TIMELINE_PAGE_SIZE = 25


@dataclass(frozen=True)
class TimelinePage:
    events: list[Event]
    next_cursor: str | None  # pass as ?cursor= for older events


def profile_events(*, profile: Profile) -> QuerySet[Event]:
    """A profile's timeline, newest first (ties broken by id so paging is stable)."""
    return (
        Event.objects.filter(profile=profile)
        .select_related("source")
        .defer("payload")
        .order_by("-timestamp", "-id")
    )


def _cursor_encode(event: Event) -> str:
    micros = int(event.timestamp.timestamp() * 1_000_000)
    return f"{micros}_{event.pk}"


def timeline_cursor_decode(cursor: str) -> tuple[datetime, int]:
    """Parse a timeline cursor; ValueError says what is wrong with it."""
    micros, sep, event_id = cursor.partition("_")
    if not sep or not micros.lstrip("-").isdigit() or not event_id.isdigit():
        raise ValueError("cursor must look like <microseconds>_<event id>")
    try:
        moment = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError("cursor time is out of range") from exc
    return moment, int(event_id)


def profile_timeline(
    *, profile: Profile, cursor: str | None = None, size: int = TIMELINE_PAGE_SIZE
) -> TimelinePage:
    """A page of `profile_events`, newest first, by keyset on (timestamp, id) so that paging
    stays on the (profile, -timestamp) index however far back it goes. (A merge moves the
    duplicate's events onto the survivor, so they are here too.)"""
    events = profile_events(profile=profile)
    if cursor:
        moment, event_id = timeline_cursor_decode(cursor)
        events = events.filter(Q(timestamp__lt=moment) | Q(timestamp=moment, id__lt=event_id))
    rows = list(events[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return TimelinePage(events=rows, next_cursor=_cursor_encode(rows[-1]) if has_more else None)
