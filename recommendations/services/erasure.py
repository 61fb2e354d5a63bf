"""The erasure hook (registered with consent.services.erasure_hook_register in apps.py)."""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from access.queueing import task_queue_debounced
from recommendations import cache
from recommendations.models import Interaction


def recommendation_data_erase(
    *, profile_ids: Sequence[int], identifiers: Sequence[str]
) -> dict[str, int]:
    """Remove what recommendations derived from these profiles: their interactions and their
    cache version tokens (their cached lists, keyed `profile:<id>`, go with consent's cache
    scan). Returns rows removed per model label (the cache tokens as "recommendations.cache").

    No saved model holds a row per person: each keeps item-side state only (item factors,
    item-item weights, popularity), a person's factors being solved from their history at
    request time (recommenders.base), and the verification scan searches the artifacts too.
    But those item-side weights were fitted on the person's interactions too: when they had
    any, the serving model is retrained without them (debounced, ERASURE_RETRAIN_DELAY_SECONDS).
    Idempotent."""
    removed: dict[str, int] = {}
    interactions, _ = Interaction.objects.filter(event__profile_id__in=list(profile_ids)).delete()
    if interactions:
        removed[Interaction._meta.label] = interactions
        task_queue_debounced(
            "recommendations.tasks.models_retrain_task",
            seconds=settings.ERASURE_RETRAIN_DELAY_SECONDS,
        )
    tokens = cache.profiles_forget(profile_ids=profile_ids)
    if tokens:
        removed["recommendations.cache"] = tokens
    return removed
