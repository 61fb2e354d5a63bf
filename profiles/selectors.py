"""Reads of profiles and their timelines, with their joins chosen here (STYLE.md rule 3).

`profiles` is the bottom layer: it never imports `identity`. It reaches a profile's identifiers
through the reverse relation `Profile.identities` that `identity.Identity` declares.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from django.conf import settings
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from profiles.models import Event, Profile

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
    boolean or null, as that value too (`?trait.age=42` matches 42 and "42")."""
    candidates: list[Any] = [raw]
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw
    if not isinstance(parsed, str | dict | list):
        candidates.append(parsed)
    condition = Q()
    for candidate in candidates:
        document: Any = candidate
        for key in reversed(path):
            document = {key: document}
        # `@>` containment: a GIN index on traits, when there is one, serves it.
        condition |= Q(traits__contains=document)
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
    average order value, `lifetime_value` the revenue to date.
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
        "monetary": round(revenue / orders, 2) if orders else 0.0,
        "lifetime_value": revenue,
    }
