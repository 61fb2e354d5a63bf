"""Matching a whole batch, the pure core (no ORM): block → compare → fit → score → cluster.

`batch_match` is what the full rescan runs on profiles loaded from the database and what the
benchmark runs on FEBRL and synthetic records; `IncrementalMatcher` matches one new record
against an index of the rest.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from identity.blocking import (
    DEFAULT_RULES,
    BlockingIndex,
    BlockingRule,
    candidate_pairs,
    rule_fields,
)
from identity.matching import (
    Model,
    Prepared,
    Thresholds,
    compared_fields,
    em_fit,
    models_combine,
    pairs_compare,
    prior_estimate,
    u_default,
    u_estimate,
)

# Below this many records m keeps its defaults (most of a match's mass on "exact"); u and the
# prior are still estimated from the data.
MIN_FIT_RECORDS = 1000


def random_pairs(
    n: int, count: int, *, seed: int = 0, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`count` random pairs i != j (from different groups when given), reproducible."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=count * 2)
    j = rng.integers(0, n, size=count * 2)
    keep = i != j
    if groups is not None:
        keep &= groups[i] != groups[j]
    return i[keep][:count], j[keep][:count]


def model_fit(
    prepared: Prepared,
    rule_codes: dict[str, np.ndarray],
    li: np.ndarray,
    ri: np.ndarray,
    levels: np.ndarray,
    *,
    rules: Sequence[BlockingRule] = DEFAULT_RULES,
    random_sample: int = 200_000,
    seed: int = 0,
    groups: np.ndarray | None = None,
    session_sample: int = 300_000,
) -> Model:
    """Fit without labels, as Splink does: u from random pairs; m by EM once per blocking rule
    over that rule's pairs, leaving out the fields the rule made agree (their agreement there
    says nothing), then combined; finally P(match) of a random pair by a fixed point over all
    candidate pairs."""
    n = prepared.size
    count = min(random_sample, max(n * 20, 1000))
    ui, uj = random_pairs(n, count, seed=seed, groups=groups)
    u = u_estimate(prepared.fields, pairs_compare(prepared, prepared, ui, uj))
    rng = np.random.default_rng(seed)
    if n < MIN_FIT_RECORDS:
        # Too few records for EM to tell matches from non-matches, or for random pairs to be
        # mostly non-matches: default m and u.
        rules = ()
        u = [u_default(spec) for spec in compared_fields(prepared.fields)]
    candidate_codes = li * n + ri  # sorted: candidate_pairs returns them in code order
    sessions = []
    for rule in rules:
        codes = rule_codes.get(rule.name)
        if codes is None or len(codes) < 20 or not rule.train:
            continue
        if len(codes) > session_sample:
            codes = rng.choice(codes, session_sample, replace=False)
        excluded = rule_fields(rule, prepared.fields)
        # Every rule's pairs are among the candidates, whose levels are already known.
        session_levels = levels[np.searchsorted(candidate_codes, codes)]
        fitted = em_fit(prepared.fields, session_levels, u, prior=0.3, exclude=excluded)
        sessions.append((fitted, excluded, fitted.prior * len(codes)))
    model = models_combine(prepared.fields, sessions, u)
    if groups is None:
        total_pairs = n * (n - 1) // 2
    else:
        sizes = np.bincount(groups)
        total_pairs = int((sizes.sum() ** 2 - (sizes**2).sum()) // 2)
    # At least one record in a hundred has a duplicate: keeps a small or duplicate-free batch
    # from fitting a prior of ~0 that would never let anything merge later.
    floor = 0.01 * n / max(total_pairs, 1)
    model.prior = max(prior_estimate(model, levels, total_pairs), floor)
    model.meta = {"sessions": len(sessions), "pairs": len(li), "random_pairs": len(ui)}
    return model


@dataclass
class BatchResult:
    left: np.ndarray
    right: np.ndarray
    levels: np.ndarray
    probability: np.ndarray
    decision: np.ndarray  # 2 merge, 1 review, 0 nothing
    model: Model
    timings: dict[str, float] = field(default_factory=dict)
    blocking: dict[str, int] = field(default_factory=dict)

    def selected(self, minimum: int = 1) -> np.ndarray:
        return np.nonzero(self.decision >= minimum)[0]


def batch_match(
    prepared: Prepared,
    *,
    thresholds: Thresholds,
    rules: Sequence[BlockingRule] = DEFAULT_RULES,
    model: Model | None = None,
    max_block: int = 200,
    groups: np.ndarray | None = None,
) -> BatchResult:
    """All candidate pairs of a batch scored and decided. A given `model` is used as is;
    otherwise one is fitted on this batch (unsupervised)."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    li, ri, stats = candidate_pairs(
        prepared, rules, max_block=max_block, groups=groups, keep_rule_pairs=model is None
    )
    timings["blocking"] = time.perf_counter() - t
    t = time.perf_counter()
    levels = pairs_compare(prepared, prepared, li, ri)
    timings["compare"] = time.perf_counter() - t
    t = time.perf_counter()
    if model is None:
        model = model_fit(prepared, stats.rule_codes, li, ri, levels, rules=rules, groups=groups)
    timings["fit"] = time.perf_counter() - t
    t = time.perf_counter()
    probability = model.probability(levels)
    decision = thresholds.decide(probability)
    timings["score"] = time.perf_counter() - t
    return BatchResult(
        li, ri, levels, probability, decision, model, timings, dict(stats.pairs_by_rule)
    )


def clusters(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components (cluster label per record) of the merged pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


class IncrementalMatcher:
    """An index of existing records; `match` scores one new record against its candidates."""

    def __init__(
        self,
        prepared: Prepared,
        model: Model,
        rules: Sequence[BlockingRule] = DEFAULT_RULES,
        *,
        max_block: int = 200,
    ) -> None:
        self.prepared = prepared
        self.model = model
        self.index = BlockingIndex(prepared, rules, max_block=max_block)

    def match(self, record: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """(candidate indexes, match probabilities), best first."""
        found = self.index.candidates(record)
        if len(found) == 0:
            return found, np.zeros(0)
        levels = pairs_compare(record, self.prepared, np.zeros(len(found), np.int64), found)
        probability = self.model.probability(levels)
        order = np.argsort(-probability, kind="stable")
        return found[order], probability[order]
