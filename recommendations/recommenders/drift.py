"""The scores the drift check compares (services.drift): what a fitted recommender gives the
people of some data, in the shape its `home` lists are built from. No ORM.

The sample is the people with an interaction in the last `days` of the data (those about to
be served), at most `limit` of them in a stable hash order of their keys, so that the same
people tend to be drawn from one day to the next. Each one's ten best items, their purchases
left out as the `home` slot leaves them out, give ten scores: the distribution of those is
the model's output on today's population.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from recommendations.interactions import naive_utc
from recommendations.recommenders.base import Recommender, TrainingData

TOP_ITEMS = 10
# Who counts as about to be served: an interaction in the data's last this-many days.
RECENT_DAYS = 30.0
BATCH = 250


def recent_people(data: TrainingData, *, days: float, limit: int) -> list[int]:
    """Rows of `data` with an interaction in its last `days`, at most `limit` (stable order)."""
    import numpy as np

    cutoff = np.datetime64(naive_utc(data.now - timedelta(days=days)), "s")
    rows = np.unique(data.users[data.times >= cutoff]).tolist()
    rows.sort(key=lambda row: hashlib.sha256(str(data.user_keys[row]).encode()).digest())
    return sorted(rows[:limit])


def served_scores(model: Recommender, data: TrainingData, rows: list[int]) -> list[float]:
    """The scores of each person's TOP_ITEMS best items (purchases left out), all together."""
    found: list[float] = []
    for start in range(0, len(rows), BATCH):
        users = data.histories(rows[start : start + BATCH])
        for best in model.recommend(users, k=TOP_ITEMS, exclude=users.purchases):
            found.extend(float(score) for _, score in best)
    return found


def drift_scores(model: Recommender, data: TrainingData, *, limit: int) -> list[float]:
    """`served_scores` of the `recent_people` of `data` (RECENT_DAYS)."""
    return served_scores(model, data, recent_people(data, days=RECENT_DAYS, limit=limit))
