"""Recommendation blocks in message templates: `{% for item in recommendations.home limit: 4 %}`
(slots `home`, `cart`, `buy_again`, `trending`), served by recommendations.serving, which
applies the person's `personalization` consent itself.

Lazy: a template that never names `recommendations` costs nothing, and each slot it names is
served once per message. A slot that cannot be served (unknown, or needing a page item, or
the catalog failing) is an empty list: a message never breaks for a block.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

from profiles.models import Profile
from recommendations.serving import PERSONAL_SLOTS, Request, recommendations_for_profile

logger = logging.getLogger(__name__)

# Items served per block; a template's `limit:` takes fewer.
BLOCK_ITEMS = 12
SLOTS = (*PERSONAL_SLOTS, "trending")
# What a template sees of an item.
ITEM_FIELDS = (
    "external_id",
    "title",
    "url",
    "image_url",
    "price",
    "currency",
    "category",
    "reason",
)


class RecommendationSlots(Mapping[str, list[dict[str, Any]]]):
    """`recommendations.<slot>` for one person, served on first use."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.served: dict[str, list[dict[str, Any]]] = {}

    def __getitem__(self, slot: str) -> list[dict[str, Any]]:
        if slot not in SLOTS:
            raise KeyError(slot)
        if slot not in self.served:
            self.served[slot] = self._serve(slot)
        return self.served[slot]

    def _serve(self, slot: str) -> list[dict[str, Any]]:
        try:
            answer = recommendations_for_profile(
                profile=self.profile, request=Request(slot=slot, k=BLOCK_ITEMS)
            )
        except Exception:  # a block is an extra: the message goes without it
            logger.exception("recommendations for a message block failed (slot %s)", slot)
            return []
        return [{key: item.get(key) for key in ITEM_FIELDS} for item in answer.items]

    def __iter__(self) -> Iterator[str]:
        return iter(SLOTS)

    def __len__(self) -> int:
        return len(SLOTS)
