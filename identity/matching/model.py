"""The Fellegi-Sunter model: m/u estimation (EM, no labels), priors, refinement."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from identity.matching.fields import LEVELS, FieldSpec, compared_fields, fields_from_config

_EPS = 1e-6


@dataclass
class Model:
    """m[f][k] = P(level k of field f | match), u[f][k] = P(level k | non-match), for the
    non-null levels k = 1..K (index 0 is unused: null contributes weight 0)."""

    fields: tuple[FieldSpec, ...]
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float  # P(match) among candidate pairs
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def compared(self) -> tuple[FieldSpec, ...]:
        return compared_fields(self.fields)

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per level; 0 for the null level."""
        out = []
        for m, u in zip(self.m, self.u, strict=True):
            w = np.log2(np.clip(m, _EPS, 1) / np.clip(u, _EPS, 1))
            w[0] = 0.0
            out.append(w)
        return out

    def prior_weight(self) -> float:
        p = min(max(self.prior, _EPS), 1 - _EPS)
        return math.log2(p / (1 - p))

    def score(self, levels: np.ndarray) -> np.ndarray:
        """Total match weight of each pair (prior included)."""
        total = np.full(len(levels), self.prior_weight(), dtype=np.float64)
        for column, w in enumerate(self.weights()):
            total += w[levels[:, column]]
        return total

    def probability(self, levels: np.ndarray) -> np.ndarray:
        return weight_to_probability(self.score(levels))

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": [{"path": f.path, "kind": f.kind} for f in self.fields],
            "m": [[float(x) for x in m] for m in self.m],
            "u": [[float(x) for x in u] for u in self.u],
            "prior": float(self.prior),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        fields = fields_from_config(data["fields"])
        m = [np.asarray(x, dtype=np.float64) for x in data["m"]]
        u = [np.asarray(x, dtype=np.float64) for x in data["u"]]
        compared = compared_fields(fields)
        for spec, mm, uu in zip(compared, m, u, strict=True):
            if len(mm) != len(LEVELS[spec.kind]) + 1 or len(uu) != len(mm):
                raise ValueError(f"model levels do not fit field {spec.path}")
        return cls(fields, m, u, float(data["prior"]), dict(data.get("meta", {})))


def weight_to_probability(weight: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.power(2.0, -np.clip(weight, -60, 60)))


def probability_to_weight(probability: float) -> float:
    p = min(max(probability, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def _level_counts(levels: np.ndarray, n_levels: int, weights: np.ndarray | None) -> np.ndarray:
    counts = np.bincount(levels, weights=weights, minlength=n_levels + 1).astype(np.float64)
    counts[0] = 0.0
    return counts


def _normalized(counts: np.ndarray, smoothing: float) -> np.ndarray:
    counts = counts.copy()
    counts[1:] += smoothing
    counts[0] = 0.0
    total = counts[1:].sum()
    return counts / total if total > 0 else counts


def u_estimate(fields: Sequence[FieldSpec], random_levels: np.ndarray) -> list[np.ndarray]:
    """u from levels of random pairs: nearly all random pairs are non-matches."""
    out = []
    for column, spec in enumerate(compared_fields(fields)):
        k = len(LEVELS[spec.kind])
        counts = _level_counts(random_levels[:, column].astype(np.int64), k, None)
        out.append(_normalized(counts, smoothing=0.5))
    return out


def _m_start(spec: FieldSpec) -> np.ndarray:
    """Default m before (or without) EM: most of a match's mass on "exact", the partial levels
    sharing a little, "else" small, except for contact fields people often have several of."""
    k = len(LEVELS[spec.kind])
    m = np.zeros(k + 1)
    other = 0.3 if spec.kind in ("email", "phone") else 0.04
    if k == 1:
        m[1] = 1.0
        return m
    m[k] = other
    m[1] = 0.8 - (other - 0.04)
    if k > 2:
        m[2:k] = (1 - m[1] - other) / (k - 2)
    else:
        m[1] = 1 - other
    return m


# P(exact agreement) for two different people, by kind: used instead of random pairs when a
# batch is too small to sample non-matches from (a handful of profiles, mostly duplicates).
_U_EXACT = {
    "first_name": 0.01,
    "last_name": 0.003,
    "date": 5e-5,
    "postcode": 1e-3,
    "street": 1e-5,
    "address": 1e-5,
    "city": 0.01,
    "text": 0.01,
    "email": 1e-7,
    "phone": 1e-7,
    "id": 1e-7,
    "exact": 0.1,
}


def u_default(spec: FieldSpec) -> np.ndarray:
    """Default u: exact agreement as rare as `_U_EXACT` says, each partial level 3x likelier
    than exact (but small), the rest "else"."""
    k = len(LEVELS[spec.kind])
    u = np.zeros(k + 1)
    u[1] = _U_EXACT[spec.kind]
    if k > 1:
        u[2:k] = min(3 * u[1], 0.05)
    u[k] = 1 - u[1:k].sum()
    return u


def em_fit(
    fields: Sequence[FieldSpec],
    levels: np.ndarray,
    u: list[np.ndarray],
    *,
    prior: float = 0.1,
    iterations: int = 40,
    fix_u: bool = True,
    tolerance: float = 1e-6,
    exclude: Iterable[str] = (),
) -> Model:
    """Estimate m (and the prior; u too unless `fix_u`) by EM over candidate pairs.

    Without labels: each pair's E-step posterior weighs its levels into m and u; fields are
    conditionally independent given match status (the Fellegi-Sunter assumption). Fields in
    `exclude` (those a blocking rule made agree) are left out: m = u, weight 0, not updated.
    """
    fields = tuple(fields)
    compared = compared_fields(fields)
    skip = {column for column, spec in enumerate(compared) if spec.path in set(exclude)}
    m = [u[c].copy() if c in skip else _m_start(spec) for c, spec in enumerate(compared)]
    u = [x.copy() for x in u]
    lv = levels.astype(np.int64)
    model = Model(fields, m, u, prior)
    history = []
    for _ in range(iterations):
        p = model.probability(lv)
        new_prior = float(p.mean())
        new_m = []
        new_u = []
        for column, spec in enumerate(compared):
            k = len(LEVELS[spec.kind])
            if column in skip:
                new_m.append(model.m[column])
                continue
            new_m.append(_normalized(_level_counts(lv[:, column], k, p), smoothing=1e-3))
            if not fix_u:
                new_u.append(_normalized(_level_counts(lv[:, column], k, 1 - p), 1e-3))
        change = abs(new_prior - model.prior) + max(
            float(np.abs(a - b).max()) for a, b in zip(new_m, model.m, strict=True)
        )
        model = Model(fields, new_m, new_u if not fix_u else model.u, new_prior)
        history.append(change)
        if change < tolerance:
            break
    model.m = [_exact_strongest(mm, uu) for mm, uu in zip(model.m, model.u, strict=True)]
    model.meta = {"em_iterations": len(history), "pairs": len(lv)}
    return model


def prior_estimate(model: Model, levels: np.ndarray, total_pairs: int) -> float:
    """P(match) for a random pair: the fixed point of λ = Σ posterior(λ) / all pairs, over the
    candidate pairs (matches outside them are assumed few: blocking recall is high)."""
    bayes = model.score(levels) - model.prior_weight()  # log2 Bayes factor, prior removed
    factor = np.power(2.0, np.clip(bayes, -60, 60))
    lam = max(len(levels) * 0.1, 1.0) / max(total_pairs, 1)
    for _ in range(100):
        posterior = lam * factor / (1 - lam + lam * factor)
        new = float(posterior.sum()) / max(total_pairs, 1)
        new = min(max(new, 1e-15), 0.5)
        if abs(new - lam) <= 1e-9 * lam:
            break
        lam = new
    return lam


def models_combine(
    fields: Sequence[FieldSpec],
    sessions: Sequence[tuple[Model, set[str], float]],
    u: list[np.ndarray],
) -> Model:
    """One m per field from several EM sessions: the mean of the sessions that estimated it
    (not excluded), weighted by their expected number of matches."""
    compared = compared_fields(fields)
    m = []
    for column, spec in enumerate(compared):
        estimates = [(s.m[column], w) for s, excluded, w in sessions if spec.path not in excluded]
        total = sum(w for _, w in estimates)
        if not estimates or total <= 0:
            m.append(_m_start(spec))
            continue
        m.append(sum(est * w for est, w in estimates) / total)
    m = [_exact_strongest(mm, uu) for mm, uu in zip(m, u, strict=True)]
    return Model(tuple(fields), m, [x.copy() for x in u], 0.5)


def _exact_strongest(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """An exact agreement is never weaker evidence than a partial one, whatever EM saw (a
    batch whose duplicates all carry a typo in one field would otherwise penalise exact)."""
    ratio = np.clip(m[1:], _EPS, 1) / np.clip(u[1:], _EPS, 1)
    if ratio[0] >= ratio[1:].max(initial=0):
        return m
    m = m.copy()
    m[1] = ratio[1:].max() * max(u[1], _EPS)
    m[0] = 0.0
    return m / m[1:].sum()


def model_refine(
    model: Model, levels: np.ndarray, labels: np.ndarray, *, strength: float = 50.0
) -> Model:
    """Refine m from staff decisions: the level counts of confirmed merges (known matches) are
    added to m, with the EM estimate counting as `strength` pseudo-pairs.

    u stays as estimated from random pairs: rejected suggestions are near misses chosen by the
    matcher, not a sample of non-matches, and counting them would bias u.
    """
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return model
    lv = levels[labels].astype(np.int64)
    new_m = []
    for column, spec in enumerate(model.compared):
        k = len(LEVELS[spec.kind])
        counts = _level_counts(lv[:, column], k, None)
        seen = counts[1:].sum()
        prior_counts = model.m[column] * strength
        new_m.append(_normalized(prior_counts + counts, 1e-6) if seen else model.m[column])
    meta = {**model.meta, "refined_with": int(labels.sum())}
    return Model(model.fields, new_m, model.u, model.prior, meta)
