"""The profile explorer's search: an exact identifier or profile id, else words of a name."""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import OperationalError, connection, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from profiles.identifiers import NORMALIZERS, Key
from profiles.models import Event, Profile
from profiles.selectors.profiles import identities_prefetch

# Trait keys that hold a person's name or email, as SDKs send them (camelCase and snake_case).
NAME_TRAIT_KEYS = ("name", "firstName", "lastName", "first_name", "last_name", "email")
EXPLORER_PAGE_SIZE = 25


# The explorer's sort orders: name -> ordering. "newest" pages by keyset on id (any size of
# table); the others by page number.
SORTS: dict[str, tuple[Any, ...]] = {
    "newest": ("-id",),
    "last_seen": (F("last_seen").desc(nulls_last=True), "-id"),
    "revenue": ("-revenue", "-id"),
    "orders": ("-order_count", "-id"),
    "events": ("-event_count", "-id"),
}


@dataclass(frozen=True)
class ExplorerFilters:
    """The explorer's filters. Profiles without a single event (bot visitors: their events are
    flagged and not counted) are left out unless `include_empty` or a search names someone."""

    segment_id: int | None = None
    has_email: bool = False
    source_id: int | None = None
    seen_days: int | None = None
    include_empty: bool = False


@dataclass(frozen=True)
class ProfilePage:
    """One page of the explorer: by keyset on id for the newest first, else by page number;
    with the number of profiles that match."""

    profiles: list[Profile]
    next_after: int | None  # pass as ?after= for the following (older) page
    prev_before: int | None  # pass as ?before= for the preceding (newer) page
    exact: bool = False  # the query was an exact identifier or profile id
    total: int = 0
    page_number: int = 1  # sorts other than newest: this page, and whether there are more
    has_next: bool = False
    pages: list[int] = field(default_factory=list)


def profiles_filtered(profiles: QuerySet[Profile], filters: ExplorerFilters) -> QuerySet[Profile]:
    if not filters.include_empty:
        profiles = profiles.filter(event_count__gt=0)
    if filters.has_email:
        profiles = profiles.filter(
            Exists(_related("identities").filter(profile=OuterRef("pk"), kind="email"))
        )
    if filters.segment_id is not None:
        # Segments keep memberships in their table; read through the reverse relation, as the
        # identities above (profiles import no higher app).
        profiles = profiles.filter(
            Exists(
                _related("segment_memberships").filter(
                    profile=OuterRef("pk"), segment_id=filters.segment_id
                )
            )
        )
    if filters.source_id is not None:
        profiles = profiles.filter(
            Exists(Event.objects.filter(profile=OuterRef("pk"), source_id=filters.source_id))
        )
    if filters.seen_days is not None:
        since = timezone.now() - dt.timedelta(days=filters.seen_days)
        profiles = profiles.filter(last_seen__gte=since)
    return profiles


def _related(name: str) -> QuerySet:
    model = Profile._meta.get_field(name).related_model
    return model._default_manager.all()  # type: ignore[union-attr]


def _identity_lookups(query: str) -> list[Key]:
    """The identity keys an exact identifier search looks up: the query read as each kind of
    identifier it can be, normalised as identity keys are."""
    return [(kind, value) for kind, normalize in NORMALIZERS.items() if (value := normalize(query))]


def _exact_matches(query: str) -> QuerySet[Profile]:
    """Live profiles whose id, or one of whose identifiers, is exactly the query: index
    lookups only."""
    matches = Q()
    for kind, value in _identity_lookups(query):
        matches |= Q(identities__kind=kind, identities__value=value)
    if matches:
        matches = Q(pk__in=Profile.objects.filter(matches).values("pk"))
    if query.isdigit() and len(query) < 19:
        matches |= Q(pk=int(query))
    if not matches:  # the query can be no identifier and no id (an empty Q would match all)
        return Profile.objects.none()
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
    filters: ExplorerFilters | None = None,
    sort: str = "newest",
    page_number: int = 1,
) -> ProfilePage:
    """A page of `profile_search`, filtered: newest first by keyset on id (`after` goes older,
    `before` newer), other sorts by `page_number`."""
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute(f"SET LOCAL statement_timeout = {int(SEARCH_TIMEOUT_MS)}")
            found, exact = profile_search(query=query)
            filters = filters or ExplorerFilters()
            if query.strip():
                # A search names someone: show them even without events.
                filters = ExplorerFilters(**{**filters.__dict__, "include_empty": True})
            found = profiles_filtered(found, filters)
            total = found.count()
            if sort != "newest":
                return _numbered_page(found, exact, total, SORTS[sort], page_number, size)
            page = _search_page(found, exact, after=after, before=before, size=size)
            return ProfilePage(**{**page.__dict__, "total": total})
    except OperationalError as exc:
        if "statement timeout" in str(exc):
            raise SearchTooSlowError(query) from exc
        raise


def _numbered_page(
    found: QuerySet[Profile],
    exact: bool,
    total: int,
    ordering: tuple[Any, ...],
    number: int,
    size: int,
) -> ProfilePage:
    last = max(1, -(-total // size))
    number = min(max(1, number), last)
    start = (number - 1) * size
    rows = list(
        found.prefetch_related(identities_prefetch()).order_by(*ordering)[start : start + size]
    )
    nearby = [n for n in range(number - 2, number + 3) if 1 <= n <= last]
    return ProfilePage(
        profiles=rows,
        next_after=None,
        prev_before=None,
        exact=exact,
        total=total,
        page_number=number,
        has_next=number < last,
        pages=sorted({1, *nearby, last}),
    )


def _search_page(
    found: QuerySet[Profile], exact: bool, *, after: int | None, before: int | None, size: int
) -> ProfilePage:
    profiles = found.prefetch_related(identities_prefetch())
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
