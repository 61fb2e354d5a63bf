"""Reads of profiles: the API's filtered list, one profile, its survivor, its computed features.

`profiles` is a low layer: it never imports `identity`. It reaches a profile's identifiers
through the reverse relation `Profile.identities` that `identity.Identity` declares.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.db.models import Exists, F, JSONField, OuterRef, Prefetch, Q, QuerySet, Value
from django.db.models.fields.json import KeyTransform, KeyTransformExact
from django.utils import timezone

from access.parsers import strict_json_loads
from profiles.identifiers import ANONYMOUS_ID, EMAIL, PHONE, USER_ID, identifier_normalize
from profiles.models import Profile

# Most levels of nesting a trait filter path may have (`trait.address.city` has two).
MAX_TRAIT_PATH_DEPTH = 5


@dataclass(frozen=True)
class ProfileFilters:
    """What `GET /api/v1/profiles/` filters by. Identifier lookups are exact, after the
    normalization identity keys have (`profiles.identifiers`); trait filters map a dotted path
    to the wanted value."""

    email: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    phone: str | None = None
    traits: dict[tuple[str, ...], str] = field(default_factory=dict)


def profile_identifier_lookups(*, filters: ProfileFilters) -> dict[str, str]:
    """The identity keys ({kind: value}) the filters look up, normalised as identity keys are;
    InvalidIdentifierError (naming the kind) for a value that can be no identifier, since it
    could never match."""
    wanted = {
        EMAIL: filters.email,
        USER_ID: filters.user_id,
        ANONYMOUS_ID: filters.anonymous_id,
        PHONE: filters.phone,
    }
    return {
        kind: identifier_normalize(kind, value)
        for kind, value in wanted.items()
        if value is not None
    }


def identities_prefetch() -> Prefetch:
    """A profile's identities, in (kind, value) order, with only the columns shown."""
    identity_model = Profile._meta.get_field("identities").related_model
    return Prefetch(
        "identities",
        queryset=identity_model._default_manager.only("id", "kind", "value", "profile_id").order_by(
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
    """Live profiles (not merged away), newest first, identities prefetched.
    InvalidIdentifierError when an identifier filter can be no identifier."""
    filters = filters or ProfileFilters()
    queryset = Profile.objects.filter(merged_into__isnull=True)
    identities = Profile._meta.get_field("identities").related_model._default_manager
    for kind, value in profile_identifier_lookups(filters=filters).items():
        queryset = queryset.filter(
            Exists(identities.filter(profile_id=OuterRef("pk"), kind=kind, value=value))
        )
    for path, raw in filters.traits.items():
        queryset = queryset.filter(_trait_condition(path, raw))
    return queryset.prefetch_related(identities_prefetch()).order_by("-id")


def profile_get(*, profile_id: int) -> Profile | None:
    """One profile, merged or not (callers decide what a merged one means), with identities."""
    return Profile.objects.prefetch_related(identities_prefetch()).filter(pk=profile_id).first()


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


def json_column(value: Any) -> Any:
    """A JSON column's value as a written-out query reads it: Django reads jsonb as text (its
    psycopg2 setup), as SQLite gives it; JSON built in the query (json_build_array) arrives
    parsed."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def profile_computed_features(profile: Profile, *, now: datetime | None = None) -> dict[str, Any]:
    """The computed features of a profile, in one place for the API and the pages.

    Columns the pipeline maintains, plus RFM read from them: `recency_days` is whole days since
    the last order (null without orders), `frequency` the number of orders, `monetary` the
    total revenue of Order Completed events (the same `monetary` segments and models use),
    `average_order_value` revenue per order (null without orders), `lifetime_value` the revenue
    to date; all in the workspace currency, with `revenue_unconverted` the orders in currencies
    without a rate, per currency (in none of those figures).
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
        "revenue_unconverted": {
            currency: float(amount)
            for currency, amount in sorted((profile.revenue_unconverted or {}).items())
        },
        "first_order_at": profile.first_order_at,
        "last_order_at": last_order,
        "recency_days": max((now - last_order).days, 0) if last_order else None,
        "frequency": orders,
        "monetary": revenue,
        "average_order_value": round(revenue / orders, 2) if orders else None,
        "lifetime_value": revenue,
    }
