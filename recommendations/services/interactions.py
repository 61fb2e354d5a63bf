"""The pipeline stage: what a chunk of processed events teaches the catalog and the models.

For every e-commerce event of the chunk (see recommendations.interactions): the products it
names are created or updated in the catalog, one `Interaction` per product is recorded, and
the profiles' cached recommendation lists are invalidated after commit, so the next request
answers from their new history (the models fold a person's history in at request time: no
retraining is needed for a new event to count).

Interactions are recorded whatever the person's consent; training and personal serving read
them only through the `personalization` gate, so a consent given or withdrawn later counts at
once in both directions.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from profiles.models import Event, Profile
from recommendations import cache
from recommendations.interactions import event_products
from recommendations.models import Interaction
from recommendations.services.catalog import ProductSighting, items_learn


def interactions_record(*, resolved: Sequence[tuple[Profile, Sequence[Event]]]) -> int:
    """Record the chunk's product interactions; returns how many the chunk named. Idempotent:
    an event processed again adds nothing (one interaction per event, item and kind)."""
    touched: list[tuple[Event, list]] = []
    for _profile, events in resolved:
        for event in events:
            if event.is_bot or not event.event:
                continue
            touches = event_products(event.event, event.properties)
            if touches:
                touched.append((event, touches))
    if not touched:
        return 0
    items = items_learn(
        sightings=(
            ProductSighting(touch.external_id, touch.fields, event.timestamp)
            for event, touches in touched
            for touch in touches
        )
    )
    rows = [
        Interaction(
            event=event,
            item=items[touch.external_id],
            kind=touch.kind,
            quantity=touch.quantity,
            occurred_at=event.timestamp,
        )
        for event, touches in touched
        for touch in touches
    ]
    Interaction.objects.bulk_create(rows, ignore_conflicts=True)
    profile_ids = sorted({event.profile_id for event, _ in touched if event.profile_id})
    transaction.on_commit(lambda: cache.profiles_invalidate(profile_ids=profile_ids))
    return len(rows)
