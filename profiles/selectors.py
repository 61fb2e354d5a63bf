"""Reads of profiles and their timelines.

Identities are reached through the reverse relation `Profile.identities` so that this app (the
bottom layer) never imports `identity`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import phonenumbers
from django.conf import settings
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from profiles.models import Event, Profile

# ---------------------------------------------------------------------------------------------
# Profile explorer and profile 360° page (UI)
# ---------------------------------------------------------------------------------------------

# Trait keys that hold a person's name or email, as SDKs send them (camelCase and snake_case).
NAME_TRAIT_KEYS = ("name", "firstName", "lastName", "first_name", "last_name", "email")
EXPLORER_PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 25
# Merge chains are short (a survivor is re-pointed on each merge); the bound only stops a cycle.
MAX_MERGE_HOPS = 20


@dataclass(frozen=True)
class ProfilePage:
    """One keyset page of the explorer: ids descending, no COUNT over the table."""

    profiles: list[Profile]
    next_after: int | None  # pass as ?after= for the following (older) page
    prev_before: int | None  # pass as ?before= for the preceding (newer) page


@dataclass(frozen=True)
class TimelinePage:
    events: list[Event]
    next_cursor: str | None  # pass as ?cursor= for older events


def _identity_lookups(query: str) -> list[tuple[str, str]]:
    """The (kind, normalized value) pairs an exact identifier search should look up."""
    pairs = [("user_id", query), ("anonymous_id", query), ("device_id", query)]
    if "@" in query:
        pairs.append(("email", query.lower()))
    if any(ch.isdigit() for ch in query):
        try:
            number = phonenumbers.parse(query, settings.PHONE_DEFAULT_REGION)
        except phonenumbers.NumberParseException:
            number = None
        if number is not None and phonenumbers.is_valid_number(number):
            pairs.append(
                ("phone", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
            )
    return pairs


def profile_search(*, query: str) -> QuerySet[Profile]:
    """Live profiles matching a search box entry, newest first.

    Matches the profile id, any exact identifier (user id, anonymous id, device id, email,
    phone), or, word by word, the name and email traits (so "ann smi" finds Anna Smith).
    Exact identifiers go through the (kind, value) unique index; the trait match scans, which
    the explorer bounds with keyset paging (it never counts the whole result).
    """
    profiles = Profile.objects.filter(merged_into__isnull=True)
    query = " ".join(query.split())
    if not query:
        return profiles.order_by("-id")

    identity_match = Q()
    for kind, value in _identity_lookups(query):
        identity_match |= Q(identities__kind=kind, identities__value=value)
    matches = Q(pk__in=Profile.objects.filter(identity_match).values("pk"))
    if query.isdigit() and len(query) < 19:
        matches |= Q(pk=int(query))
    words = Q()
    for word in query.split():
        any_key = Q()
        for key in NAME_TRAIT_KEYS:
            any_key |= Q(**{f"traits__{key}__icontains": word})
        words &= any_key
    matches |= words
    return profiles.filter(matches).order_by("-id")


def profile_search_page(
    *,
    query: str,
    after: int | None = None,
    before: int | None = None,
    size: int = EXPLORER_PAGE_SIZE,
) -> ProfilePage:
    """A page of `profile_search` by keyset on id: `after` goes older, `before` newer."""
    profiles = profile_search(query=query).prefetch_related("identities")
    if before is not None:
        rows = list(profiles.filter(pk__gt=before).order_by("id")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        return ProfilePage(
            profiles=rows,
            next_after=rows[-1].pk if rows else None,
            prev_before=rows[0].pk if rows and has_newer else None,
        )
    if after is not None:
        profiles = profiles.filter(pk__lt=after)
    rows = list(profiles[: size + 1])
    has_older = len(rows) > size
    rows = rows[:size]
    return ProfilePage(
        profiles=rows,
        next_after=rows[-1].pk if rows and has_older else None,
        prev_before=rows[0].pk if rows and after is not None else None,
    )


def profile_survivor(*, profile_id: int) -> Profile | None:
    """The live profile for an id: itself, or the profile it was merged into (followed to the
    end of the chain). None when no such profile exists."""
    profile = Profile.objects.filter(pk=profile_id).first()
    hops = 0
    while profile is not None and profile.merged_into_id is not None and hops < MAX_MERGE_HOPS:
        profile = Profile.objects.filter(pk=profile.merged_into_id).first()
        hops += 1
    return profile


def profile_for_page(*, profile_id: int) -> Profile | None:
    """A profile with its identities loaded, for the 360° page."""
    # The reverse relation's model, so that profiles never imports identity.
    identity_model = Profile._meta.get_field("identities").related_model
    identities = Prefetch("identities", queryset=identity_model.objects.order_by("kind", "value"))
    return Profile.objects.filter(pk=profile_id).prefetch_related(identities).first()


def profile_merged_ids(*, profile: Profile) -> list[int]:
    """The profile and every profile merged into it, directly or through others."""
    ids = [profile.pk]
    frontier = [profile.pk]
    while frontier and len(ids) < 10_000:
        frontier = list(
            Profile.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True)
        )
        ids.extend(frontier)
    return ids


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
    """Events of a profile (and of profiles merged into it), newest first, by keyset on
    (timestamp, id) so that paging stays on the (profile, -timestamp) index."""
    ids = profile_merged_ids(profile=profile)
    events = (
        Event.objects.filter(profile_id__in=ids)
        .select_related("source")
        .order_by("-timestamp", "-id")
    )
    if cursor:
        moment, event_id = timeline_cursor_decode(cursor)
        events = events.filter(Q(timestamp__lt=moment) | Q(timestamp=moment, id__lt=event_id))
    rows = list(events[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return TimelinePage(events=rows, next_cursor=_cursor_encode(rows[-1]) if has_more else None)


def profile_features(*, profile: Profile) -> list[tuple[str, Any]]:
    """The computed features shown on the 360° page, as (label, value) in display order."""
    now = timezone.now()
    recency = (now - profile.last_seen).days if profile.last_seen else None
    average_order = (
        (profile.revenue / profile.order_count).quantize(Decimal("0.01"))
        if profile.order_count
        else None
    )
    return [
        ("Events", profile.event_count),
        ("Sessions", profile.session_count),
        ("Orders", profile.order_count),
        ("Revenue", profile.revenue),
        ("Average order", average_order),
        ("First seen", profile.first_seen),
        ("Last seen", profile.last_seen),
        ("Days since last seen", recency),
        ("First order", profile.first_order_at),
        ("Last order", profile.last_order_at),
    ]


ACRONYMS = {"os": "OS", "ip": "IP", "id": "ID", "url": "URL", "utm": "UTM"}


def _context_label(path: str) -> str:
    plain = path.replace("_", " ").replace(".", " ")
    # camelCase → words: "userAgent" → "user Agent"
    spaced = "".join(f" {ch}" if ch.isupper() else ch for ch in plain)
    words = [ACRONYMS.get(word, word) for word in spaced.lower().split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


# Context groups in the order a reader looks for them; anything else follows alphabetically.
CONTEXT_ORDER = (
    "device",
    "os",
    "browser",
    "userAgent",
    "locale",
    "timezone",
    "location",
    "ip",
    "campaign",
    "referrer",
    "page",
    "app",
    "screen",
    "network",
    "library",
)


def profile_context_rows(*, context: dict[str, Any]) -> list[tuple[str, str]]:
    """Flatten a profile's context (Segment's nested `context` shape, or flat) into labelled
    rows: {"device": {"type": "mobile"}} → ("Device type", "mobile")."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any, depth: int) -> None:
        if isinstance(value, dict) and depth < 3:
            for key in sorted(value, key=str):
                walk(f"{prefix}.{key}" if prefix else str(key), value[key], depth + 1)
        elif value not in (None, "", [], {}):
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append((prefix, text))

    if not isinstance(context, dict):
        return rows
    order = {key: n for n, key in enumerate(CONTEXT_ORDER)}
    for key in sorted(context, key=lambda k: (order.get(k, len(order)), str(k))):
        walk(str(key), context[key], 1)
    return [(_context_label(path), text) for path, text in rows]
