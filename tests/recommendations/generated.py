"""A small generated shop where the right answer is known: people in two taste groups (A and
B) take up items of their own group only, so a good model recommends each person the items of
their group they have not had yet."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from recommendations.recommenders.base import TrainingData

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ITEMS = {"A": [f"a{i}" for i in range(12)], "B": [f"b{i}" for i in range(12)]}
# Content models read these: the two groups' items share words.
TEXTS = {
    **{key: f"garden tool spade rake {key}" for key in ITEMS["A"]},
    **{key: f"kitchen pan knife pot {key}" for key in ITEMS["B"]},
}
WEIGHTING = {
    "weights": {"view": 0.2, "cart": 0.5, "purchase": 1.0},
    "half_life_days": 30.0,
    "repeat_half_life_days": 365.0,
}


def taste_records(
    people: int = 60, per_person: int = 6, seed: int = 1, days: int = 90
) -> list[tuple[int, str, str, datetime]]:
    """(person, item, kind, naive time): person p is in group A when p is even. A popular
    item per group (a0, b0) is taken up by most, so popularity alone is a fair baseline."""
    rng = random.Random(seed)
    records = []
    for person in range(people):
        group = "A" if person % 2 == 0 else "B"
        items = ITEMS[group]
        chosen = [*rng.sample(items[1:], per_person - 1), items[0]]
        for item in chosen:
            at = NOW - timedelta(days=rng.uniform(0, days))
            records.append((person, item, "purchase", at.replace(tzinfo=None)))
    return records


def taste_data(*, groups_follow_taste: bool = False, **kwargs) -> TrainingData:
    """The shop's data; people live "north" or "south", independently of their taste unless
    `groups_follow_taste` (then the A people are the north)."""
    people = range(kwargs.get("people", 60))
    if groups_follow_taste:
        group = {p: "north" if p % 2 == 0 else "south" for p in people}
    else:
        group = {p: "north" if (p // 2) % 2 == 0 else "south" for p in people}
    return TrainingData.from_records(
        taste_records(**kwargs), now=NOW, item_text=TEXTS, user_group=group, **WEIGHTING
    )


def group_of(item_key: str) -> str:
    return "A" if item_key.startswith("a") else "B"
