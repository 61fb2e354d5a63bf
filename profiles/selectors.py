"""Reads of profiles and their timelines, with their joins chosen here (STYLE.md rule 3).

`profiles` is the bottom layer: it never imports `identity`. It reaches a profile's identifiers
through the reverse relation `Profile.identities` that `identity.Identity` declares.
"""

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.db.models import (
    Count,
    Exists,
    F,
    JSONField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.fields.json import KeyTransform, KeyTransformExact
from django.db.models.functions import Coalesce
from django.utils import timezone

from access.models import Source
from access.parsers import strict_json_loads
from profiles.models import Event, Profile, QuarantinedMessage

# Most levels of nesting a trait filter path may have (`trait.address.city` has two).
MAX_TRAIT_PATH_DEPTH = 5


class InvalidLookupError(ValueError):
    """A lookup value that can never match (e.g. a phone number that does not parse)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.message = message


@dataclass(frozen=True)
class ProfileFilters:
    """What `GET /api/v1/profiles/` filters by. Identifier lookups are exact, after the same
    normalization ingestion applies; trait filters map a dotted path to the wanted value."""

    email: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    phone: str | None = None
    traits: dict[tuple[str, ...], str] = field(default_factory=dict)


def email_normalize(value: str) -> str:
    return value.strip().lower()


def phone_normalize(value: str) -> str:
    """E.164, reading numbers without a country code in PHONE_DEFAULT_REGION."""
    try:
        number = phonenumbers.parse(value.strip(), settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise InvalidLookupError("phone", f"{value!r} is not a phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _identities_prefetch() -> Prefetch:
    identity_model = Profile._meta.get_field("identities").related_model
    return Prefetch(
        "identities",
        queryset=identity_model.objects.only("id", "kind", "value", "profile_id").order_by(
            "kind", "value"
        ),
    )


def _trait_condition(path: tuple[str, ...], raw: str) -> Q:
    """The trait at `path` equals `raw`, read as a string or, when it parses as a JSON number,
    boolean or null, as that value too (`?trait.age=42` matches 42 and "42"). NaN, Infinity and
    numbers beyond the float range are no JSON values a trait can hold, so they match only the
    string (`?trait.x=NaN` finds "NaN")."""
    candidates: list[Any] = [raw]
    try:
        parsed = strict_json_loads(raw)
    except ValueError:
        parsed = raw
    if not isinstance(parsed, str | dict | list):
        candidates.append(parsed)
    condition = Q()
    for candidate in candidates:
        if connection.vendor == "postgresql":
            document: Any = candidate
            for key in reversed(path):
                document = {key: document}
            # `@>` containment: a GIN index on traits, when there is one, serves it.
            condition |= Q(traits__contains=document)
        else:
            # SQLite has no JSON containment: compare the value at the key path instead.
            # (All-digit keys read as array indexes there, so they do not match.)
            value: Any = F("traits")
            for key in path:
                value = KeyTransform(key, value)
            # A plain string would be sent as raw JSON text; None must stay None to mean null.
            wanted = candidate if candidate is None else Value(candidate, JSONField())
            condition |= Q(KeyTransformExact(value, wanted))
    return condition


def profile_list(*, filters: ProfileFilters | None = None) -> QuerySet[Profile]:
    """Live profiles (not merged away), newest first, identities prefetched."""
    filters = filters or ProfileFilters()
    queryset = Profile.objects.filter(merged_into__isnull=True)
    identity_model = Profile._meta.get_field("identities").related_model
    lookups = {
        "email": email_normalize(filters.email) if filters.email is not None else None,
        "user_id": filters.user_id,
        "anonymous_id": filters.anonymous_id,
        "phone": phone_normalize(filters.phone) if filters.phone is not None else None,
    }
    for kind, value in lookups.items():
        if value is None:
            continue
        queryset = queryset.filter(
            Exists(identity_model.objects.filter(profile_id=OuterRef("pk"), kind=kind, value=value))
        )
    for path, raw in filters.traits.items():
        queryset = queryset.filter(_trait_condition(path, raw))
    return queryset.prefetch_related(_identities_prefetch()).order_by("-id")


def profile_get(*, profile_id: int) -> Profile | None:
    """One profile, merged or not (callers decide what a merged one means), with identities."""
    return Profile.objects.prefetch_related(_identities_prefetch()).filter(pk=profile_id).first()


def profile_survivor(*, profile: Profile) -> Profile:
    """The profile a merged-away profile finally lives on (merges can chain)."""
    seen = {profile.pk}
    while profile.merged_into_id is not None:
        successor = Profile.objects.filter(pk=profile.merged_into_id).first()
        if successor is None or successor.pk in seen:
            break
        seen.add(successor.pk)
        profile = successor
    return profile


def profile_events(*, profile: Profile) -> QuerySet[Event]:
    """A profile's timeline, newest first (ties broken by id so paging is stable)."""
    return (
        Event.objects.filter(profile=profile)
        .select_related("source")
        .defer("payload")
        .order_by("-timestamp", "-id")
    )


def profile_computed_features(profile: Profile, *, now: datetime | None = None) -> dict[str, Any]:
    """The computed features of a profile, in one place for the API and the pages.

    Columns the pipeline maintains, plus RFM read from them: `recency_days` is whole days since
    the last order (null without orders), `frequency` the number of orders, `monetary` the
    total revenue of Order Completed events (the same `monetary` segments and models use),
    `average_order_value` revenue per order (null without orders), `lifetime_value` the revenue
    to date.
    """
    now = now or timezone.now()
    revenue = float(profile.revenue or 0)
    orders = profile.order_count or 0
    last_order = profile.last_order_at
    return {
        "event_count": profile.event_count,
        "session_count": profile.session_count,
        "order_count": orders,
        "revenue": revenue,
        "first_order_at": profile.first_order_at,
        "last_order_at": last_order,
        "recency_days": max((now - last_order).days, 0) if last_order else None,
        "frequency": orders,
        "monetary": revenue,
        "average_order_value": round(revenue / orders, 2) if orders else None,
        "lifetime_value": revenue,
    }


def sources_overview() -> QuerySet[Source]:
    """Every source with its event and quarantine counts, latest event time and plan.

    Counts are per-source subqueries (each an index scan on that source's rows), not one
    join over every event."""
    events = Event.objects.filter(source=OuterRef("pk"))
    quarantined = QuarantinedMessage.objects.filter(source=OuterRef("pk"))
    return (
        Source.objects.select_related("plan")
        .annotate(
            events_count=Coalesce(
                Subquery(events.order_by().values("source").annotate(n=Count("*")).values("n")),
                0,
            ),
            quarantined_count=Coalesce(
                Subquery(
                    quarantined.order_by().values("source").annotate(n=Count("*")).values("n")
                ),
                0,
            ),
            latest_event_at=Subquery(events.order_by("-received_at").values("received_at")[:1]),
        )
        .order_by("name")
    )


def source_overview(*, source_id: int) -> Source | None:
    return sources_overview().filter(pk=source_id).first()


def quarantine_list(*, source: Source | None = None) -> QuerySet[QuarantinedMessage]:
    """Quarantined messages, newest first, optionally of one source."""
    queryset = QuarantinedMessage.objects.select_related("source").order_by("-received_at", "-id")
    if source is not None:
        queryset = queryset.filter(source=source)
    return queryset


# ---------------------------------------------------------------------------------------------
# Profile explorer and profile 360° page (UI)
# ---------------------------------------------------------------------------------------------

# Trait keys that hold a person's name or email, as SDKs send them (camelCase and snake_case).
NAME_TRAIT_KEYS = ("name", "firstName", "lastName", "first_name", "last_name", "email")
EXPLORER_PAGE_SIZE = 25
TIMELINE_PAGE_SIZE = 25


@dataclass(frozen=True)
class ProfilePage:
    """One keyset page of the explorer: ids descending, no COUNT over the table."""

    profiles: list[Profile]
    next_after: int | None  # pass as ?after= for the following (older) page
    prev_before: int | None  # pass as ?before= for the preceding (newer) page
    exact: bool = False  # the query was an exact identifier or profile id


@dataclass(frozen=True)
class TimelinePage:
    events: list[Event]
    next_cursor: str | None  # pass as ?cursor= for older events


def _identity_lookups(query: str) -> list[tuple[str, str]]:
    """The (kind, normalized value) pairs an exact identifier search should look up."""
    pairs = [("user_id", query), ("anonymous_id", query), ("device_id", query)]
    if "@" in query:
        pairs.append(("email", email_normalize(query)))
    if sum(ch.isdigit() for ch in query) >= 6:
        # Not a phone number: the other lookups still apply.
        with contextlib.suppress(InvalidLookupError):
            pairs.append(("phone", phone_normalize(query)))
    return pairs


def _exact_matches(query: str) -> QuerySet[Profile]:
    """Live profiles whose id, or one of whose identifiers, is exactly the query: index
    lookups only."""
    identity_match = Q()
    for kind, value in _identity_lookups(query):
        identity_match |= Q(identities__kind=kind, identities__value=value)
    matches = Q(pk__in=Profile.objects.filter(identity_match).values("pk"))
    if query.isdigit() and len(query) < 19:
        matches |= Q(pk=int(query))
    return Profile.objects.filter(matches, merged_into__isnull=True).order_by("-id")


def _name_matches(query: str) -> QuerySet[Profile]:
    """Live profiles whose name or email traits contain every word of the query."""
    words = Q()
    for word in query.split():
        any_key = Q()
        for key in NAME_TRAIT_KEYS:
            any_key |= Q(**{f"traits__{key}__icontains": word})
        words &= any_key
    return Profile.objects.filter(words, merged_into__isnull=True).order_by("-id")


def profile_search(*, query: str) -> tuple[QuerySet[Profile], bool]:
    """Live profiles matching a search box entry, newest first, and whether the match is exact.

    An exact identifier (profile id, user id, anonymous id, device id, email, phone) wins: it is
    answered from the unique (kind, value) index, and is what someone pasting an id wants.
    Otherwise every word must appear in a name or email trait ("ann smi" finds Anna Smith);
    that scans, which the explorer bounds by keyset paging (it never counts the result) and by
    a statement timeout.
    """
    query = " ".join(query.split())
    if not query:
        return Profile.objects.filter(merged_into__isnull=True).order_by("-id"), False
    exact = _exact_matches(query)
    if exact.exists():
        return exact, True
    return _name_matches(query), False


class SearchTooSlowError(Exception):
    """The name search ran past SEARCH_TIMEOUT_MS (a very large table and a rare word)."""


# A person typing waits this long at most; past it the page asks for a more specific search.
SEARCH_TIMEOUT_MS = 5000


def profile_search_page(
    *,
    query: str,
    after: int | None = None,
    before: int | None = None,
    size: int = EXPLORER_PAGE_SIZE,
) -> ProfilePage:
    """A page of `profile_search` by keyset on id: `after` goes older, `before` newer."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL statement_timeout = {int(SEARCH_TIMEOUT_MS)}")
            return _search_page(query=query, after=after, before=before, size=size)
    except OperationalError as exc:
        if "statement timeout" in str(exc):
            raise SearchTooSlowError(query) from exc
        raise


def _search_page(*, query: str, after: int | None, before: int | None, size: int) -> ProfilePage:
    found, exact = profile_search(query=query)
    profiles = found.prefetch_related(_identities_prefetch())
    if before is not None:
        rows = list(profiles.filter(pk__gt=before).order_by("id")[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        return ProfilePage(
            profiles=rows,
            next_after=rows[-1].pk if rows else None,
            prev_before=rows[0].pk if rows and has_newer else None,
            exact=exact,
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
        exact=exact,
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


def profile_feature_rows(*, profile: Profile) -> list[tuple[str, Any]]:
    """The computed features for the 360° page as (label, value), in reading order."""
    features = profile_computed_features(profile)
    last_seen_days = (timezone.now() - profile.last_seen).days if profile.last_seen else None
    return [
        ("Events", features["event_count"]),
        ("Sessions", features["session_count"]),
        ("First seen", profile.first_seen),
        ("Last seen", profile.last_seen),
        ("Days since last seen", last_seen_days),
        ("Orders (frequency)", features["frequency"]),
        ("Total spent (monetary)", features["monetary"]),
        ("Average order value", features["average_order_value"]),
        ("Lifetime value", features["lifetime_value"]),
        ("Days since last order (recency)", features["recency_days"]),
        ("First order", features["first_order_at"]),
        ("Last order", features["last_order_at"]),
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
