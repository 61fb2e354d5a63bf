"""The hybrid: a weighted blend of the other recommenders, each one's scores scaled per person
to [-1, 1] first. The weights are tuned on a validation window cut from the training data's
own end (the last `validation_days`), never on a test window: the components are fitted on the
data before the window, the weights chosen by coordinate ascent on NDCG@10 of the people who
took up new items in it, and the components fitted again on all the data.

Content similarity keeps a small weight floor (`content_floor`), so that items nobody has
touched yet can still reach a person's list.

A person without history gets the cold-start list instead: recent popularity in their group,
its window and group weight tuned on the people of the same validation window who had no
history before it (on UCI Online Retail: popularity of the last 30 days in the customer's
country, NDCG@10 0.117 where overall popularity gets 0.101).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

from recommendations.recommenders.base import (
    Explainer,
    Histories,
    Reason,
    Recommender,
    TrainingData,
    normalised,
)
from recommendations.recommenders.evaluation import evaluate, window_split
from recommendations.recommenders.popularity import RecentPopularity

GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0)
COLD_DAYS = (14.0, 30.0, 60.0)
COLD_MIX = [(group, first) for group in (0.0, 0.5, 1.0, 2.0) for first in (0.0, 1.0, 2.0, 4.0)]
ROUNDS = 2
MAX_VALIDATION_PEOPLE = 3000


class Hybrid(Recommender):
    name = "hybrid"

    def __init__(
        self,
        components: dict[str, Recommender],
        *,
        validation_days: float = 30.0,
        content_floor: float = 0.05,
        weights: dict[str, float] | None = None,
    ) -> None:
        self.components = components
        self.params = {
            "validation_days": validation_days,
            "content_floor": content_floor,
            "components": {name: c.params for name, c in components.items()},
        }
        # Given weights are used as they are; otherwise `fit` tunes them.
        self.fixed_weights = weights
        self.weights: dict[str, float] = dict(weights or {})
        self.validation: dict[str, Any] = {}
        self.cold_start = RecentPopularity()
        self.n_items = 0
        self.seconds: dict[str, float] = {}  # fitting time per component, for the run record

    def fit(self, data: TrainingData) -> Hybrid:
        if self.fixed_weights is None:
            self.weights = self._tune(data)
            self.cold_start = self._tune_cold_start(data)
        for name, component in self.components.items():
            started = time.perf_counter()
            component.fit(data)
            self.seconds[name] = round(time.perf_counter() - started, 2)
        self.cold_start.fit(data)
        self.n_items = data.n_items
        self.params["weights"] = dict(self.weights)
        self.params["cold_start"] = dict(self.cold_start.params)
        return self

    def _tune_cold_start(self, data: TrainingData) -> RecentPopularity:
        split = window_split(data, days=self.params["validation_days"], cold=True)
        if len(split.rows) == 0:
            return RecentPopularity()
        quality = {}
        for days in COLD_DAYS:
            # The weights only mix what one fit counted: fitted once per window.
            fitted = RecentPopularity(days=days, first_weight=1.0).fit(split.train)
            for group, first in COLD_MIX:
                model = copy.copy(fitted)
                model.params = {**fitted.params, "group_weight": group, "first_weight": first}
                quality[(days, group, first)] = evaluate(model, split).metrics["ndcg"]
        days, group, first = max(quality, key=quality.__getitem__)
        self.validation["cold_start"] = {
            "people": len(split.rows),
            "ndcg_at_10": quality[(days, group, first)],
        }
        return RecentPopularity(days=days, group_weight=group, first_weight=first)

    def _tune(self, data: TrainingData) -> dict[str, float]:
        import numpy as np

        split = window_split(data, days=self.params["validation_days"])
        if len(split.rows) == 0:
            self.validation = {"people": 0}
            return {name: 1.0 for name in self.components}
        if len(split.rows) > MAX_VALIDATION_PEOPLE:
            chosen = np.random.default_rng(0).choice(
                len(split.rows), MAX_VALIDATION_PEOPLE, replace=False
            )
            chosen.sort()
            split.rows = split.rows[chosen]
            split.relevant = [split.relevant[i] for i in chosen]
            split.exclude = split.exclude[chosen]
        histories = split.train.histories(split.rows)
        excluded = split.exclude.toarray().astype(bool)
        scored = {}
        for name, component in self.components.items():
            started = time.perf_counter()
            component.fit(split.train)
            self.seconds[f"validation {name}"] = round(time.perf_counter() - started, 2)
            scores = normalised(component.scores(histories))
            scores[excluded] = -np.inf
            scored[name] = scores

        relevant = np.zeros(excluded.shape, dtype=bool)
        for row, items in enumerate(split.relevant):
            relevant[row, list(items)] = True
        ideal = np.array([_dcg(min(len(items), 10)) for items in split.relevant])

        def quality(weights: dict[str, float]) -> float:
            total = np.zeros(excluded.shape, dtype=np.float32)
            for name, weight in weights.items():
                if weight:
                    total += weight * scored[name]
            return _ndcg_at_10(total, relevant, ideal)

        alone = {name: quality({name: 1.0}) for name in scored}
        weights = {name: 0.0 for name in scored}
        weights[max(alone, key=alone.__getitem__)] = 1.0
        floor = {"content": self.params["content_floor"]} if "content" in scored else {}
        weights.update({name: max(weights[name], w) for name, w in floor.items()})
        best = quality(weights)
        for _ in range(ROUNDS):
            for name in scored:
                for value in GRID:
                    if value < floor.get(name, 0.0):
                        continue
                    trial = {**weights, name: value}
                    if not any(trial.values()):
                        continue
                    score = quality(trial)
                    if score > best + 1e-6:
                        best, weights = score, trial
        self.validation = {
            "people": len(split.rows),
            "ndcg_at_10": best,
            "alone": alone,
        }
        return weights

    def _parts(self, users: Histories) -> dict[str, Any]:
        return {
            name: normalised(component.scores(users))
            for name, component in self.components.items()
            if self.weights.get(name)
        }

    def scores(self, users: Histories) -> Any:
        import numpy as np

        total = np.zeros((len(users), self.n_items), dtype=np.float32)
        for name, component in self.components.items():
            weight = self.weights.get(name)
            if not weight:
                continue
            if isinstance(component, RecentPopularity):
                # One vector per group: added to its people's rows, not stacked per person.
                groups = np.asarray(users.groups, dtype=object)
                for group in set(users.groups):
                    vector = normalised(component.item_scores(group)[None, :], weight)[0]
                    if len(set(users.groups)) == 1:
                        total += vector
                    else:
                        total[groups == group] += vector
            else:
                total += normalised(component.scores(users), weight)
        cold = np.flatnonzero(np.asarray(users.weighted.getnnz(axis=1)) == 0)
        if len(cold):
            total[cold] = self.cold_start.scores(users.select(cold))
        return total

    def similar_items(self, item: int, k: int = 10) -> list[tuple[int, float]]:
        blended: dict[int, float] = {}
        for name, component in self.components.items():
            weight = max(self.weights.get(name, 0.0), 0.1 if name == "content" else 0.0)
            if not weight:
                continue
            similar = component.similar_items(item, k * 3)
            peak = max((abs(score) for _, score in similar), default=0.0)
            for other, score in similar:
                blended[other] = blended.get(other, 0.0) + weight * score / (peak or 1.0)
        ranked = sorted(blended.items(), key=lambda pair: -pair[1])
        return ranked[:k]

    def explain(self, users: Histories, row: int, item: int) -> Reason:
        return self.explain_many(users, row, [item])[0]

    def explain_many(self, users: Histories, row: int, items: Sequence[int]) -> list[Reason]:
        """Each item's reason is the one of the component that gave it the most (weighted)."""
        one = users.row(row)
        if one.weighted.nnz == 0:
            return self.cold_start.explain_many(one, 0, items)
        return self._reasons(one, self._parts(one), items)

    def scores_explained(self, users: Histories) -> tuple[Any, Explainer]:
        """Person 0's scores, exactly as `scores` blends them, and their reasons worded from
        the same component scores: serving scored every component a second time to word a
        list's reasons."""
        import numpy as np

        one = users if len(users) == 1 else users.row(0)
        if one.weighted.nnz == 0:
            return super().scores_explained(one)
        total = np.zeros(self.n_items, dtype=np.float32)
        parts = {}
        for name, component in self.components.items():
            weight = self.weights.get(name)
            if not weight:
                continue
            scores = np.asarray(component.scores(one), dtype=np.float32)
            total += normalised(scores.copy(), weight)[0]
            parts[name] = normalised(scores)
        return total, lambda items: self._reasons(one, parts, items)

    def _reasons(self, one: Histories, parts: dict[str, Any], items: Sequence[int]) -> list[Reason]:
        if not parts:
            return [Reason("recommended") for _ in items]
        by_component: dict[str, list[int]] = {}
        for item in items:
            name = max(parts, key=lambda n: self.weights[n] * parts[n][0, item])
            by_component.setdefault(name, []).append(item)
        reasons: dict[int, Reason] = {}
        for name, chosen in by_component.items():
            reasons.update(
                zip(chosen, self.components[name].explain_many(one, 0, chosen), strict=True)
            )
        return [reasons[item] for item in items]


def _dcg(hits: int) -> float:
    import math

    return sum(1.0 / math.log2(rank + 2) for rank in range(hits))


def _ndcg_at_10(scores: Any, relevant: Any, ideal: Any) -> float:
    """Mean NDCG@10 of every row's ten best items (binary gains), vectorised."""
    import numpy as np

    best = np.argpartition(-scores, 9, axis=1)[:, :10]
    order = np.take_along_axis(scores, best, axis=1).argsort(axis=1)[:, ::-1]
    ranked = np.take_along_axis(best, order, axis=1)
    gains = np.take_along_axis(relevant, ranked, axis=1) / np.log2(np.arange(2, 12))
    return float((gains.sum(axis=1) / ideal).mean())
