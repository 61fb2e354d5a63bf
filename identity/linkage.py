"""Matching a whole batch, the pure core (no ORM): block → compare → fit → score → decide →
cluster.

`batch_match` is what the full rescan runs on profiles loaded from the database and what the
benchmark runs on FEBRL and synthetic records; `IncrementalMatcher` matches one new record
against an index of the rest. Both score and decide through `pairs_judge`, so a pair gets the
same verdict whichever path meets it: the model's weights, names weighed by frequency, the
evidence rule, and the hold (`merges_hold`: too little data, too few pairs clearly one
person, or a refit that would merge far more than the model before) under which every merge
waits for review.
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
    frequencies_count,
    model_refine,
    models_combine,
    pairs_compare,
    pairs_decide,
    pairs_score,
    prior_estimate,
    u_blend,
    u_estimate,
    weight_to_probability,
)

# Below this many records m keeps its starting values (EM cannot tell matches from namesakes
# with so few); u, blended with its defaults, the name frequencies and the prior are still
# estimated from the data.
MIN_FIT_RECORDS = 1000
# Below this many profiles with something to compare nothing merges automatically: the shares
# of names, cities and birthdays the weights rest on are too rough, and a wrong merge is a
# privacy incident (one person's events, consent and exports on another's profile).
MIN_AUTO_MERGE_PROFILES = 200
# Nor while fewer pairs than this are clearly one person (above the merge threshold, with
# evidence beyond names; earlier merges count): nothing shows yet that the fit tells people
# apart.
MIN_CONFIDENT_PAIRS = 3
# A refit that would merge more than JUMP_FACTOR times what the previous model merges among the
# same pairs, plus JUMP_MARGIN, has drifted (EM deciding a name match is nearly decisive, say):
# its merges are held for review.
JUMP_FACTOR = 2.0
JUMP_MARGIN = 10


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
        # Too few records for EM to tell matches from namesakes (m keeps its starting values),
        # and perhaps for random pairs to be mostly non-matches (u leans on its defaults).
        rules = ()
        u = u_blend(prepared.fields, u, pairs=min(len(ui), n * (n - 1) // 2))
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
    model.frequencies = frequencies_count(prepared=prepared, fields=prepared.fields, u=model.u)
    model.meta = {"sessions": len(sessions), "pairs": len(li), "random_pairs": len(ui)}
    return model


def pairs_judge(
    model: Model,
    left: Prepared,
    li: np.ndarray,
    levels: np.ndarray,
    *,
    thresholds: Thresholds,
    hold: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """(probability, decision) of compared pairs: the model's score with names weighed by
    frequency, then the thresholds, the evidence rule and the hold (`merges_hold`)."""
    probability = weight_to_probability(pairs_score(model, left, li, levels))
    decision = pairs_decide(
        fields=model.fields,
        levels=levels,
        probability=probability,
        thresholds=thresholds,
        hold=hold,
    )
    return probability, decision


def comparable_records(prepared: Prepared) -> int:
    """How many records have at least one compared field (a profile with only an anonymous
    id tells the fit nothing)."""
    present = np.zeros(prepared.size, dtype=bool)
    for spec in compared_fields(prepared.fields):
        present |= prepared.cols[spec.path] != ""
    return int(present.sum())


def merges_hold(*, profiles: int, confident: int, merges: int, previous_merges: int | None) -> str:
    """Why a run must not merge automatically, in words for the review page ("" if it may):
    `profiles` with something to compare when the model was fitted, `confident` pairs clearly
    one person (merged before, or merging in this run), the `merges` the fit makes and those
    the model before it makes among the same pairs (None: no model before)."""
    if profiles < MIN_AUTO_MERGE_PROFILES:
        return (
            f"only {profiles} profiles had traits to compare at the last full rescan; "
            f"automatic merges start at {MIN_AUTO_MERGE_PROFILES}, until then every candidate "
            f"waits for review"
        )
    if confident < MIN_CONFIDENT_PAIRS:
        return (
            f"only {confident} pair(s) are clearly one person so far; automatic merges start "
            f"at {MIN_CONFIDENT_PAIRS} (merging candidates here counts), until then every "
            f"candidate waits for review"
        )
    if previous_merges is not None and merges > JUMP_FACTOR * previous_merges + JUMP_MARGIN:
        return (
            f"the last refit would merge {merges} pairs where the model before it merges "
            f"{previous_merges} of the same; its merges wait for review (decide them, and the "
            f"next full rescan compares again)"
        )
    return ""


def hold_refresh(model: Model, *, merged_before: int, merges: int) -> str:
    """`merges_hold` for a run scored with a saved model: the profiles and the refit's jump
    as its fit counted them, the confident pairs afresh (`merged_before` and this run's
    `merges`)."""
    return merges_hold(
        profiles=int(model.meta.get("profiles", 0)),
        confident=merged_before + merges,
        merges=int(model.meta.get("merges", 0)),
        previous_merges=model.meta.get("previous_merges"),
    )


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


def _baseline(previous: Model | None) -> Model | None:
    """What a refit's merges are compared with: the previous model, or the model it was
    compared with itself if its merges were held."""
    if previous is None or not previous.meta.get("baseline"):
        return previous
    try:
        return Model.from_json(previous.meta["baseline"])
    except ValueError:  # saved in an older format
        return previous


def batch_match(
    prepared: Prepared,
    *,
    thresholds: Thresholds,
    rules: Sequence[BlockingRule] = DEFAULT_RULES,
    max_block: int = 200,
    groups: np.ndarray | None = None,
    decided: tuple[np.ndarray, np.ndarray] | None = None,
    previous: Model | None = None,
    merged_before: int = 0,
) -> BatchResult:
    """All candidate pairs of a batch scored and decided by a model fitted on this batch
    (unsupervised), refined from staff decisions when given (`decided`: the levels of decided
    pairs and whether staff merged them). Its hold (`merges_hold`) counts `merged_before`
    (pairs merged by earlier runs or staff) among the confident pairs, and compares with the
    `previous` model on the same pairs."""
    timings: dict[str, float] = {}
    t = time.perf_counter()
    li, ri, stats = candidate_pairs(
        prepared, rules, max_block=max_block, groups=groups, keep_rule_pairs=True
    )
    timings["blocking"] = time.perf_counter() - t
    t = time.perf_counter()
    levels = pairs_compare(prepared, prepared, li, ri)
    timings["compare"] = time.perf_counter() - t
    t = time.perf_counter()
    model = model_fit(prepared, stats.rule_codes, li, ri, levels, rules=rules, groups=groups)
    if decided is not None and decided[1].any():
        model = model_refine(model, decided[0], decided[1])
    timings["fit"] = time.perf_counter() - t
    t = time.perf_counter()
    probability, decision = pairs_judge(model, prepared, li, levels, thresholds=thresholds)
    merges = int((decision == 2).sum())
    baseline = _baseline(previous)
    previous_merges = None
    if baseline is not None:
        previous_merges = int(
            (pairs_judge(baseline, prepared, li, levels, thresholds=thresholds)[1] == 2).sum()
        )
    profiles = comparable_records(prepared)
    hold = merges_hold(
        profiles=profiles,
        confident=merges + merged_before,
        merges=merges,
        previous_merges=previous_merges,
    )
    model.meta.update(profiles=profiles, merges=merges, previous_merges=previous_merges, hold=hold)
    if hold:
        decision[decision == 2] = 1
        if baseline is not None:
            # The next refit compares with the last model whose merges went ahead (or the
            # oldest held since), not with this one: re-running does not wave a jump through.
            model.meta["baseline"] = baseline.to_json()
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
        thresholds: Thresholds,
        max_block: int = 200,
    ) -> None:
        self.prepared = prepared
        self.model = model
        self.thresholds = thresholds
        self.index = BlockingIndex(prepared, rules, max_block=max_block)

    def match(self, record: Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(candidate indexes, match probabilities, decisions), best first. The hold counts
        the fit's merges as done, as a full rescan does them."""
        found = self.index.candidates(record)
        if len(found) == 0:
            return found, np.zeros(0), np.zeros(0, np.int8)
        left = np.zeros(len(found), np.int64)
        levels = pairs_compare(record, self.prepared, left, found)
        probability, decision = pairs_judge(
            self.model, record, left, levels, thresholds=self.thresholds
        )
        merged_before = int(self.model.meta.get("merges", 0))
        if hold_refresh(self.model, merged_before=merged_before, merges=int((decision == 2).sum())):
            decision[decision == 2] = 1
        order = np.argsort(-probability, kind="stable")
        return found[order], probability[order], decision[order]
