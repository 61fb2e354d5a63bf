"""The profile explorer's search: an exact identifier or profile id, else words of a name."""

from dataclasses import dataclass

from django.db import OperationalError, connection, transaction
from django.db.models import Q, QuerySet

from profiles.identifiers import NORMALIZERS, Key
from profiles.models import Profile
from profiles.selectors.profiles import identities_prefetch

# Trait keys that hold a person's name or email, as SDKs send them (camelCase and snake_case).
NAME_TRAIT_KEYS = ("name", "firstName", "lastName", "first_name", "last_name", "email")
EXPLORER_PAGE_SIZE = 25


@dataclass(frozen=True)
class ProfilePage:
    """One keyset page of the explorer: ids descending, no COUNT over the table."""

    profiles: list[Profile]
    next_after: int | None  # pass as ?after= for the following (older) page
    prev_before: int | None  # pass as ?before= for the preceding (newer) page
    exact: bool = False  # the query was an exact identifier or profile id


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
