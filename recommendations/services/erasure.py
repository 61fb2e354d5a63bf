"""The erasure hook (registered with consent.erasure in apps.py)."""

from __future__ import annotations

from collections.abc import Sequence

from recommendations import cache
from recommendations.models import Interaction


def profiles_erase(*, profile_ids: Sequence[int], identifiers: Sequence[str]) -> int:
    """Remove what recommendations derived from these profiles: their interactions and their
    cache version tokens (their cached lists, keyed `profile:<id>`, go with consent's cache
    scan). Returns how many things went.

    Nothing else holds the person: every saved model keeps item-side state only (item factors,
    item-item weights, popularity), a person's factors being solved from their history at
    request time (recommenders.base), so there are no factor rows to delete and no artifact
    to rewrite. Idempotent."""
    removed, _ = Interaction.objects.filter(event__profile_id__in=list(profile_ids)).delete()
    return removed + cache.profiles_forget(profile_ids=profile_ids)
