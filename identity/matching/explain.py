"""Explanation and decision: each field's weight, and the two thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from identity.matching.compare import pairs_compare
from identity.matching.fields import LEVELS
from identity.matching.model import Model, weight_to_probability
from identity.matching.prepare import Prepared


@dataclass(frozen=True)
class FieldScore:
    path: str
    kind: str
    left: str
    right: str
    level: str
    weight: float


@dataclass(frozen=True)
class Explanation:
    fields: tuple[FieldScore, ...]
    prior_weight: float
    weight: float
    probability: float

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": [f.__dict__ for f in self.fields],
            "prior_weight": round(self.prior_weight, 4),
            "weight": round(self.weight, 4),
            "probability": self.probability,
        }


def pair_explain(model: Model, left: Prepared, right: Prepared, i: int, j: int) -> Explanation:
    """Every compared field's values, level and weight for one pair."""
    return pairs_explain(model, left, right, np.array([i]), np.array([j]))[0]


def pairs_explain(
    model: Model, left: Prepared, right: Prepared, li: np.ndarray, ri: np.ndarray
) -> list[Explanation]:
    """`pair_explain` for many pairs, their levels compared in one vectorised pass."""
    all_levels = pairs_compare(left, right, li, ri)
    weights = model.weights()
    prior = model.prior_weight()
    explained = []
    for levels, i, j in zip(all_levels, li.tolist(), ri.tolist(), strict=True):
        scores = []
        for column, spec in enumerate(model.compared):
            level = int(levels[column])
            label = "null" if level == 0 else LEVELS[spec.kind][level - 1]
            scores.append(
                FieldScore(
                    spec.path,
                    spec.kind,
                    left.value(spec.path, i),
                    right.value(spec.path, j),
                    label,
                    round(float(weights[column][level]), 4),
                )
            )
        total = prior + sum(s.weight for s in scores)
        explained.append(
            Explanation(tuple(scores), prior, total, float(weight_to_probability(total)))
        )
    return explained


@dataclass(frozen=True)
class Thresholds:
    """Match probabilities: ≥ merge → merge automatically; ≥ review → queue; else nothing."""

    merge: float = 0.98
    review: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.review <= self.merge < 1 + 1e-12:
            raise ValueError("thresholds need 0 < review ≤ merge ≤ 1")

    def decide(self, probability: np.ndarray) -> np.ndarray:
        """Per pair: 2 = merge, 1 = review, 0 = nothing."""
        p = np.asarray(probability)
        return np.where(p >= self.merge, 2, np.where(p >= self.review, 1, 0)).astype(np.int8)
