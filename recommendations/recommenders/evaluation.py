"""Offline evaluation: time-based splits, the discovery and repeat protocols and ranking
metrics, as plain numpy (no ORM); the paired bootstrap is `segments.ml.comparison`'s.

- **Split**: the last `days` of the data are the test window; models learn from what came
  before (`TrainingData.before`).
- **Discovery** protocol: a person's relevant items are those they took up in the window and
  had not had before; items they had are excluded from the ranked list as well. People with no
  history before the window form the cold-start slice.
- **Repeat** protocol (buy again): relevant are all items bought in the window, repeats
  included, and nothing is excluded.

Metrics at k, averaged over people with at least one relevant item: precision, recall (over
min(k, relevant)), MAP, NDCG (binary gains), hit rate; and catalog coverage (share of items
that appear in anyone's list).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from recommendations.interactions import PURCHASE
from recommendations.recommenders.base import Recommender, TrainingData

METRICS = ("precision", "recall", "map", "ndcg", "hit_rate")


@dataclass
class Split:
    """Who is scored in a window, what is relevant to each, and what their lists exclude."""

    train: TrainingData
    rows: Any  # person positions (in the data's user index)
    relevant: list[set[int]]
    exclude: Any  # CSR, one row per scored person, or None


def ranking_metrics(ranked: Sequence[int], relevant: set[int], k: int) -> dict[str, float]:
    """The metrics of one ranked list against one relevant set."""
    hits = [item in relevant for item in ranked[:k]]
    found = sum(hits)
    dcg = sum(1.0 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(len(relevant), k)))
    precisions = [sum(hits[: rank + 1]) / (rank + 1) for rank, hit in enumerate(hits) if hit]
    return {
        "precision": found / k,
        "recall": found / min(len(relevant), k),
        "map": sum(precisions) / min(len(relevant), k),
        "ndcg": dcg / ideal if ideal else 0.0,
        "hit_rate": float(found > 0),
    }


def window_split(
    data: TrainingData,
    *,
    days: float = 30.0,
    end: datetime | None = None,
    protocol: str = "discovery",
    cold: bool = False,
) -> Split:
    """The people to score on the last `days` before `end` (default: the data's end).

    discovery: people with history before the window (or, with `cold`, without any) who took
    up an item new to them; repeat: people with history who bought in the window."""
    import numpy as np

    end = end or data.now
    start = end - timedelta(days=days)
    train = data.before(start)
    in_window = data.window(start, end)
    if protocol == "repeat":
        in_window &= data.kinds == PURCHASE
    had = train.matrix("sum")
    history = np.asarray(had.getnnz(axis=1)) > 0
    relevant: dict[int, set[int]] = {}
    for user, item in zip(data.users[in_window], data.items[in_window], strict=True):
        relevant.setdefault(int(user), set()).add(int(item))
    rows, sets = [], []
    for user in sorted(relevant):
        if protocol == "discovery":
            if history[user] == cold:
                continue
            new = relevant[user] - set(had[user].indices.tolist())
        else:
            if not history[user]:
                continue
            new = relevant[user]
        if new:
            rows.append(user)
            sets.append(new)
    rows_array = np.asarray(rows, dtype=np.int64)
    exclude = had[rows_array] if protocol == "discovery" else None
    return Split(train=train, rows=rows_array, relevant=sets, exclude=exclude)


@dataclass
class Evaluation:
    """Mean metrics, per-person NDCG (for paired comparisons) and coverage."""

    metrics: dict[str, float]
    per_person: Any
    coverage: float
    people: int


def evaluate(model: Recommender, split: Split, *, k: int = 10, batch: int = 2000) -> Evaluation:
    """Score `model` (fitted on `split.train`) on the split's people."""
    import numpy as np

    totals = {name: 0.0 for name in METRICS}
    per_person = np.zeros(len(split.rows))
    shown: set[int] = set()
    for start in range(0, len(split.rows), batch):
        rows = split.rows[start : start + batch]
        histories = split.train.histories(rows)
        exclude = split.exclude[start : start + batch] if split.exclude is not None else None
        lists = model.recommend(histories, k, exclude)
        for offset, ranked in enumerate(lists):
            items = [item for item, _ in ranked]
            shown.update(items)
            metrics = ranking_metrics(items, split.relevant[start + offset], k)
            per_person[start + offset] = metrics["ndcg"]
            for name in METRICS:
                totals[name] += metrics[name]
    people = len(split.rows)
    return Evaluation(
        metrics={name: totals[name] / people if people else 0.0 for name in METRICS},
        per_person=per_person,
        coverage=len(shown) / split.train.n_items if split.train.n_items else 0.0,
        people=people,
    )
