"""Explanation and decision: each field's weight, the conflicts, and the thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from identity.matching.compare import pairs_compare
from identity.matching.evidence import field_marks, pairs_evidence
from identity.matching.fields import LEVELS, FieldSpec
from identity.matching.frequency import frequency_adjustment
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
    # "conflict" (says two people), "evidence" (tells one person from a namesake) or "".
    role: str = ""
    # For a name both sides share: how common it is among the profiles (the weight says so).
    share: float | None = None


@dataclass(frozen=True)
class Explanation:
    fields: tuple[FieldScore, ...]  # the conflicting fields first
    prior_weight: float
    weight: float
    probability: float
    # Whether an exact id outranks the conflicts (`identity.matching.evidence.OVERRIDE`).
    outranked: bool = False

    @property
    def conflicts(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.fields if f.role == "conflict")

    @property
    def evidence(self) -> tuple[str, ...]:
        return tuple(f.path for f in self.fields if f.role == "evidence")

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": [f.__dict__ for f in self.fields],
            "conflicts": list(self.conflicts),
            "outranked": self.outranked,
            "evidence": list(self.evidence),
            "prior_weight": round(self.prior_weight, 4),
            "weight": round(self.weight, 4),
            "probability": self.probability,
        }


def pair_explain(model: Model, left: Prepared, right: Prepared, i: int, j: int) -> Explanation:
    """Every compared field's values, level, weight and role for one pair."""
    return pairs_explain(model, left, right, np.array([i]), np.array([j]))[0]


def pairs_explain(
    model: Model, left: Prepared, right: Prepared, li: np.ndarray, ri: np.ndarray
) -> list[Explanation]:
    """`pair_explain` for many pairs, their levels compared in one vectorised pass."""
    all_levels = pairs_compare(left, right, li, ri)
    weights = model.weights()
    prior = model.prior_weight()
    evidence, conflict = field_marks(model.fields, all_levels)
    _, conflicted = pairs_evidence(model.fields, all_levels)
    adjusted: dict[tuple[int, int], float] = {}
    for column in range(len(model.compared)):
        exact, added = frequency_adjustment(model, column, left, li, all_levels)
        adjusted.update(zip(((int(k), column) for k in exact), added.tolist(), strict=True))
    explained = []
    for pair, (levels, i, j) in enumerate(zip(all_levels, li.tolist(), ri.tolist(), strict=True)):
        scores = []
        for column, spec in enumerate(model.compared):
            level = int(levels[column])
            label = "null" if level == 0 else LEVELS[spec.kind][level - 1]
            bits = adjusted.get((pair, column))
            # The name's share among the profiles: what its adjustment log2(u / share) used.
            share = None if bits is None else round(float(model.u[column][level]) / 2**bits, 6)
            role = "conflict" if conflict[pair, column] else ""
            scores.append(
                FieldScore(
                    spec.path,
                    spec.kind,
                    left.value(spec.path, i),
                    right.value(spec.path, j),
                    label,
                    round(float(weights[column][level]) + (bits or 0.0), 4),
                    role or ("evidence" if evidence[pair, column] else ""),
                    share,
                )
            )
        total = prior + sum(s.weight for s in scores)
        scores.sort(key=lambda s: s.role != "conflict")
        outranked = bool(conflict[pair].any() and not conflicted[pair])
        probability = float(weight_to_probability(total))
        explained.append(Explanation(tuple(scores), prior, total, probability, outranked))
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


def pairs_decide(
    *,
    fields: Sequence[FieldSpec],
    levels: np.ndarray,
    probability: np.ndarray,
    thresholds: Thresholds,
    hold: str = "",
) -> np.ndarray:
    """Per pair: 2 = merge, 1 = review, 0 = nothing. A pair above the merge threshold merges
    only with evidence beyond names and no conflict (`identity.matching.evidence`), and only
    when nothing holds this model's merges back (`hold` says why); otherwise it is reviewed."""
    decision = thresholds.decide(probability)
    supported, conflicted = pairs_evidence(fields, levels)
    decision[(decision == 2) & (conflicted | ~supported | bool(hold))] = 1
    return decision


def review_reason(explanation: Explanation, *, thresholds: Thresholds, hold: str) -> str:
    """Why a pair whose score clears the merge threshold waits for review, in words ("" when
    the score itself leaves it below): a conflict first, then names without other evidence,
    then the model's hold."""
    if explanation.probability < thresholds.merge:
        return ""
    if explanation.conflicts and not explanation.outranked:
        return "conflicting " + ", ".join(explanation.conflicts)
    if not explanation.evidence:
        return "nothing but the names agree"
    return hold
