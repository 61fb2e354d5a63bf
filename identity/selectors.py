"""Reads of exact identities."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from identity.models import Identity
from identity.normalize import Key
from profiles.models import Profile


def identities_owners(*, keys: Iterable[Key]) -> dict[Key, int]:
    """{(kind, value): profile id} for those of `keys` that already exist, in one query."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = Identity.objects.filter(
        kind__in={kind for kind, _ in wanted}, value__in={value for _, value in wanted}
    ).values_list("kind", "value", "profile_id")
    return {(kind, value): pid for kind, value, pid in rows if (kind, value) in wanted}


def profile_identities(*, profile: Profile) -> QuerySet[Identity]:
    return Identity.objects.filter(profile=profile).order_by("kind", "value")


def profile_by_identity(*, kind: str, value: str) -> Profile | None:
    """The profile an exact (already normalized) identifier belongs to, if any."""
    identity = Identity.objects.select_related("profile").filter(kind=kind, value=value).first()
    return identity.profile if identity else None
