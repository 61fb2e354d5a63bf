"""The erasure hook (registered with consent.services.erasure_hook_register in apps.py)."""

from __future__ import annotations

from collections.abc import Sequence

from recommendations import cache
from recommendations.models import Interaction


def recommendation_data_erase(
    *, profile_ids: Sequence[int], identifiers: Sequence[str]
) -> dict[str, int]:
    """Remove what recommendations derived from these profiles: their interactions and their
    cache version tokens (their cached lists, keyed `profile:<id>`, go with consent's cache
    scan). Returns rows removed per model label (the cache tokens as "recommendations.cache").

    Nothing else holds the person: every saved model keeps item-side state only (item factors,
    item-item weights, popularity), a person's factors being solved from their history at
    request time (recommenders.base), so there are no factor rows to delete and no artifact
    to rewrite. Idempotent."""
    removed: dict[str, int] = {}
    interactions, _ = Interaction.objects.filter(event__profile_id__in=list(profile_ids)).delete()
    if interactions:
        removed[Interaction._meta.label] = interactions
    tokens = cache.profiles_forget(profile_ids=profile_ids)
    if tokens:
        removed["recommendations.cache"] = tokens
    return removed
