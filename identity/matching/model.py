"""The Fellegi-Sunter model: m/u estimation (EM, no labels), priors, refinement."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from identity.matching.fields import LEVELS, FieldSpec, compared_fields, fields_from_config
from identity.matching.frequency import TermFrequencies

_EPS = 1e-6
# The saved model's layout (levels per kind, what it carries): a model saved in another
# format is refitted, not read.
MODEL_FORMAT = 2


@dataclass
class Model:
    """m[f][k] = P(level k of field f | match), u[f][k] = P(level k | non-match), for the
    non-null levels k = 1..K (index 0 is unused: null contributes weight 0); `frequencies`
    holds how common each name is, per name field (`identity.matching.frequency`)."""

    fields: tuple[FieldSpec, ...]
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float  # P(match) among candidate pairs
    meta: dict[str, Any] = field(default_factory=dict)
    frequencies: dict[str, TermFrequencies] = field(default_factory=dict)

    @property
    def compared(self) -> tuple[FieldSpec, ...]:
        return compared_fields(self.fields)

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per level, within the level's bounds (`weight_bounds`); 0 for null."""
        out = []
        for spec, m, u in zip(self.compared, self.m, self.u, strict=True):
            low, high = weight_bounds(spec.kind)
            w = np.clip(np.log2(np.clip(m, _EPS, 1) / np.clip(u, _EPS, 1)), low, high)
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
            "format": MODEL_FORMAT,
            "fields": [{"path": f.path, "kind": f.kind} for f in self.fields],
            "m": [[float(x) for x in m] for m in self.m],
            "u": [[float(x) for x in u] for u in self.u],
            "prior": float(self.prior),
            "meta": self.meta,
            "frequencies": {path: t.to_json() for path, t in self.frequencies.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        """The saved model; ValueError when it was saved in another format or for other
        levels (the caller refits)."""
        if data.get("format") != MODEL_FORMAT:
            raise ValueError(f"model format {data.get('format')!r}, not {MODEL_FORMAT}")
        fields = fields_from_config(data["fields"])
        m = [np.asarray(x, dtype=np.float64) for x in data["m"]]
        u = [np.asarray(x, dtype=np.float64) for x in data["u"]]
        compared = compared_fields(fields)
        for spec, mm, uu in zip(compared, m, u, strict=True):
            if len(mm) != len(LEVELS[spec.kind]) + 1 or len(uu) != len(mm):
                raise ValueError(f"model levels do not fit field {spec.path}")
        frequencies = {
            path: TermFrequencies.from_json(table)
            for path, table in data.get("frequencies", {}).items()
        }
        return cls(fields, m, u, float(data["prior"]), dict(data.get("meta", {})), frequencies)


def weight_to_probability(weight: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.power(2.0, -np.clip(weight, -60, 60)))


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


# Starting values, per kind and level: (m, u) = P(level | same person), P(level | two
# different people); "else" takes what is left. m starts EM, and is the model on batches too
# small for EM; u stands in where a batch is too small to sample non-matches from (a handful of
# profiles, mostly duplicates). A shared city or postcode is common among different people,
# a birthday far apart is rare for one person: the starting weights say so before any data.
_START: dict[str, dict[str, tuple[float, float]]] = {
    "first_name": {
        "exact": (0.80, 0.02),
        "nickname": (0.03, 2e-3),
        "jaro_winkler>=0.92": (0.06, 5e-3),
        "jaro_winkler>=0.84": (0.03, 0.01),
        "swapped_with_last_name": (0.02, 1e-3),
    },
    "last_name": {
        "exact": (0.82, 5e-3),
        "jaro_winkler>=0.92": (0.06, 3e-3),
        "jaro_winkler>=0.84": (0.03, 6e-3),
        "swapped_with_first_name": (0.02, 1e-3),
        "phonetic": (0.01, 2e-3),
    },
    "date": {
        "exact": (0.90, 5e-5),
        "day_month_swapped": (0.03, 1e-5),
        "damerau<=1": (0.04, 1e-3),
        "same_year_month": (0.01, 5e-4),
    },
    "address": {
        "exact": (0.55, 1e-5),
        "same_street_same_area": (0.12, 2e-5),
        "same_number_similar_street_same_area": (0.08, 2e-5),
        "similar_street_same_area": (0.04, 1e-4),
        "same_postcode": (0.05, 2e-3),
        "same_city": (0.05, 0.02),
        "different_country": (0.01, 0.05),
    },
    "email": {
        "exact": (0.45, 1e-7),
        "same_local_part": (0.10, 1e-6),
        "typo_same_digits": (0.05, 1e-6),
    },
    "phone": {"exact": (0.65, 1e-7), "damerau<=1": (0.02, 1e-6)},
}
# Bounds on a level's weight log2(m/u), whatever EM makes of the data. Agreement is never
# evidence against (EM on matches without birthday typos would make a typo a strong "different
# people"). An area many people share (city, postcode) is weak evidence and a conflict on a
# strong field is strong: "same city" can never outweigh "born 25 years apart" or "lives in
# another country". (low, high) per kind and level; levels not listed: [0, inf), "else"
# unbounded.
_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "address": {
        "same_postcode": (0.0, 5.0),
        "same_city": (0.0, 3.0),
        "different_country": (-np.inf, -6.0),
    },
    "date": {"same_year_month": (-np.inf, -6.0), "else": (-np.inf, -6.0)},
    "phone": {"else": (-np.inf, -2.0)},
}


@functools.cache
def weight_bounds(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(lowest, highest) weight per level of a kind, index 0 (null) included."""
    levels = LEVELS[kind]
    low = np.zeros(len(levels) + 1)
    high = np.full(len(levels) + 1, np.inf)
    low[len(levels)] = -np.inf  # "else"
    for level, (lo, hi) in _BOUNDS.get(kind, {}).items():
        low[levels.index(level) + 1], high[levels.index(level) + 1] = lo, hi
    return low, high


def _start(spec: FieldSpec, which: int) -> np.ndarray | None:
    """m (which=0) or u (which=1) from `_START`, "else" taking the rest; None if not listed."""
    table = _START.get(spec.kind)
    if table is None:
        return None
    levels = LEVELS[spec.kind]
    out = np.zeros(len(levels) + 1)
    for level, values in table.items():
        out[levels.index(level) + 1] = values[which]
    out[len(levels)] = 1 - out.sum()
    return out


# How many random pairs the default u counts as when blended with a small batch's own.
U_DEFAULT_PAIRS = 2000


def u_blend(
    fields: Sequence[FieldSpec], estimated: list[np.ndarray], *, pairs: int
) -> list[np.ndarray]:
    """u estimated from `pairs` distinct random pairs of a small batch, pulled towards
    `u_default` as if that had been seen in U_DEFAULT_PAIRS pairs: the batch's own shares
    where it has pairs enough to show them (one city in eight, one first name in 24), the
    defaults where it has not (a dozen profiles, half of them duplicates)."""
    share = U_DEFAULT_PAIRS / (U_DEFAULT_PAIRS + max(pairs, 0))
    return [
        (1 - share) * u + share * u_default(spec)
        for u, spec in zip(estimated, compared_fields(fields), strict=True)
    ]


def _m_start(spec: FieldSpec) -> np.ndarray:
    """Default m before (or without) EM: `_START`, or for other kinds most of a match's mass
    on "exact", the partial levels sharing a little, "else" small."""
    listed = _start(spec, 0)
    if listed is not None:
        return listed
    k = len(LEVELS[spec.kind])
    m = np.zeros(k + 1)
    if k == 1:
        m[1] = 1.0
        return m
    m[k] = 0.04
    m[1] = 0.8
    if k > 2:
        m[2:k] = (1 - m[1] - m[k]) / (k - 2)
    else:
        m[1] = 1 - m[k]
    return m


# P(exact agreement) for two different people, for the kinds `_START` does not list.
_U_EXACT = {
    "postcode": 1e-3,
    "street": 1e-5,
    "city": 0.01,
    "text": 0.01,
    "id": 1e-7,
    "exact": 0.1,
}


def u_default(spec: FieldSpec) -> np.ndarray:
    """Default u: `_START`, or exact agreement as rare as `_U_EXACT` says, each partial level
    3x likelier than exact (but small), the rest "else"."""
    listed = _start(spec, 1)
    if listed is not None:
        return listed
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
        m.append(np.sum([est * w for est, w in estimates], axis=0) / total)
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
    return Model(model.fields, new_m, model.u, model.prior, meta, model.frequencies)
