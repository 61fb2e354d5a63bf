"""Recommendation blocks in message templates: `{% for item in recommendations.home limit: 4 %}`
(slots `home`, `cart`, `buy_again`, `trending`), served by recommendations.serving, which
applies the person's `personalization` consent itself.

Lazy: a template that never names `recommendations` costs nothing, and each slot it names is
served once per message. A slot that cannot be served (unknown, or needing a page item, or
the catalog failing) is an empty list: a message never breaks for a block.

Click-through per model run: an email's links to a served item carry the item's slot
(`RecommendationSlots.slot_of`, campaigns.tracking.click_url); each slot whose items were
linked in a sent email is a `RecommendationImpression` of the run that served it, and a
person's click on one of its links is marked on the click (campaigns.services.tracking).
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
    """`recommendations.<slot>` for one person, served on first use; `runs` keeps the model
    run that served each slot (None before any model serves)."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.served: dict[str, list[dict[str, Any]]] = {}
        self.runs: dict[str, int | None] = {}

    def slot_of(self, url: str) -> str:
        """The served slot one of whose items this link leads to ("" for any other link): a
        link to an item's `url`, with or without a query or fragment the template added."""
        for slot, items in self.served.items():
            for item in items:
                target = item.get("url") or ""
                if target and (
                    url == target or url.startswith((f"{target}?", f"{target}#", f"{target}&"))
                ):
                    return slot
        return ""

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
        self.runs[slot] = answer.model_run
        return [{key: item.get(key) for key in ITEM_FIELDS} for item in answer.items]

    def __iter__(self) -> Iterator[str]:
        return iter(SLOTS)

    def __len__(self) -> int:
        return len(SLOTS)
