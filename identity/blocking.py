"""Blocking: candidate pairs without comparing all pairs (pure core, no ORM).

A rule is a list of prepared columns, named by field kind (`last_name:phonetic`,
`postcode`, ...); two records are candidates when they agree on every part of at least one
rule. Keys are hashed to 64-bit integers and sorted, so pairs come out of numpy, not Python
loops, and an incremental lookup is a binary search (`BlockingIndex`). Blocks bigger than
`max_block` are skipped (a key shared by thousands, such as a default postcode, tells nothing);
the other rules still reach those records.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from identity.matching import FieldSpec, Prepared


@dataclass(frozen=True)
class BlockingRule:
    name: str
    parts: tuple[str, ...]  # "kind" or "kind:derived", e.g. ("last_name:phonetic", "postcode")
    # Whether the model is fitted on this rule's pairs too. A rule whose non-matches agree on
    # more than its own fields (people sharing an address share a surname) would teach EM that
    # those agreements mean "same person".
    train: bool = True


DEFAULT_RULES: tuple[BlockingRule, ...] = (
    # "name" is either the first or the last name, so people whose names were entered the
    # wrong way round still share a key.
    BlockingRule("name_phonetic_postcode", ("name:phonetic", "address:postcode")),
    BlockingRule("email_local_part", ("email:local",)),
    BlockingRule("phone_suffix", ("phone:suffix",)),
    BlockingRule("birthday_initials", ("date", "@names:initials")),
    BlockingRule("names_phonetic_birth_year", ("@names:phonetic", "date:year")),
    BlockingRule("street_postcode", ("address:street", "address:postcode"), train=False),
    BlockingRule("birthday_postcode", ("date", "address:postcode")),
    BlockingRule("birthday_house_number", ("date", "address:street_number")),
    BlockingRule("street_city", ("address:street_name", "address:city"), train=False),
    BlockingRule("surname_phonetic_city", ("last_name:phonetic", "address:city")),
    BlockingRule("id_exact", ("id",)),
)
"""Rule parts: "kind" or "kind:derived" name prepared columns by field kind; "@column" names a
column computed over several fields (`@names:phonetic`, `@names:initials`: both names' codes or
initials in sorted order, so swapped first and last names agree)."""

SEPARATOR = "\x1f"
_KIND_ALIASES = {"name": ("first_name", "last_name")}


def _variants(rule: BlockingRule, fields: Sequence[FieldSpec]) -> list[tuple[str, ...]]:
    """The prepared column names of each key variant of a rule: every combination of the
    fields of each part's kind ("name" → first and last name; several id fields → each).
    Empty when the field set lacks a kind the rule needs."""
    per_part = []
    for part in rule.parts:
        if part.startswith("@"):  # a column computed over several fields
            per_part.append([part[1:]])
            continue
        kind, _, derived = part.partition(":")
        kinds = _KIND_ALIASES.get(kind, (kind,))
        paths = [f.path for f in fields if f.kind in kinds]
        if not paths:
            return []
        per_part.append([f"{p}:{derived}" if derived else p for p in paths])
    return list(itertools.product(*per_part))


def _value_hashes(prepared: Prepared, column: str) -> np.ndarray:
    """A 64-bit hash of each record's value of a column (0 for ""), computed once per
    distinct value within a batch; the same value hashes the same in every batch."""
    if prepared.size > 1:
        codes, uniques = prepared.coded(column)
        table = np.append(pd.util.hash_array(uniques, categorize=False), np.uint64(0))
        return table[codes]  # code -1 picks the trailing 0
    values = prepared.cols[column]
    hashed = pd.util.hash_array(values.astype(object), categorize=False)
    hashed[values == ""] = 0
    return hashed


_MIX = np.uint64(0x9E3779B97F4A7C15)


def rule_keys(prepared: Prepared, rule: BlockingRule) -> list[np.ndarray]:
    """One uint64 array per key variant (all in one key space); 0 marks "no key"."""
    out: list[np.ndarray] = []
    for columns in _variants(rule, prepared.fields):
        if any(c not in prepared.cols for c in columns):
            continue
        key = np.zeros(prepared.size, dtype=np.uint64)
        missing = np.zeros(prepared.size, dtype=bool)
        with np.errstate(over="ignore"):
            for position, column in enumerate(columns):
                hashed = _value_hashes(prepared, column)
                missing |= hashed == 0
                # Position-dependent mixing: ("a", "b") and ("b", "a") get different keys.
                key = (key ^ hashed) * (_MIX + np.uint64(2 * position))
                key ^= key >> np.uint64(29)
        key |= np.uint64(1)  # never 0, so 0 can mean "no key"
        key[missing] = 0
        out.append(key)
    return out


def _keyed(variants: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(keys, record ids) of every non-empty key of every variant, sorted by key (a record
    can hold the same key twice; the pairs it makes with itself are dropped later)."""
    if not variants:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    keys = np.concatenate(variants)
    ids = np.tile(np.arange(len(variants[0]), dtype=np.int64), len(variants))
    keep = keys != 0
    keys, ids = keys[keep], ids[keep]
    order = np.argsort(keys, kind="stable")
    return keys[order], ids[order]


def _pairs_within_blocks(
    variants: list[np.ndarray], max_block: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """All pairs of records sharing a key; returns (i, j, skipped blocks), i < j."""
    sorted_keys, ids = _keyed(variants)
    if len(ids) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    starts = np.r_[0, np.nonzero(sorted_keys[1:] != sorted_keys[:-1])[0] + 1]
    sizes = np.diff(np.r_[starts, len(sorted_keys)])
    too_big = sizes > max_block
    group_start = np.repeat(starts, sizes)
    group_ok = np.repeat(~too_big, sizes)
    positions = np.arange(len(sorted_keys))
    counts = np.where(group_ok, positions - group_start, 0)  # pairs with earlier members
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), int(too_big.sum())
    later = np.repeat(positions, counts)
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    earlier = np.repeat(group_start, counts) + offsets
    a, b = ids[earlier], ids[later]
    return np.minimum(a, b), np.maximum(a, b), int(too_big.sum())


@dataclass
class BlockingStats:
    pairs_by_rule: dict[str, int] = field(default_factory=dict)
    # Codes (i * n + j) of each rule's pairs, kept when asked: the model is fitted per rule.
    rule_codes: dict[str, np.ndarray] = field(default_factory=dict)
    skipped_blocks: dict[str, int] = field(default_factory=dict)
    pairs: int = 0


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    values = np.sort(values)
    if len(values) == 0:
        return values
    return values[np.r_[True, values[1:] != values[:-1]]]


def rule_fields(rule: BlockingRule, fields: Sequence[FieldSpec]) -> set[str]:
    """The field paths a rule's keys are made of (their agreement is what put a pair here)."""
    paths: set[str] = set()
    for part in rule.parts:
        if part.startswith("@names"):
            paths |= {f.path for f in fields if f.kind in ("first_name", "last_name")}
            continue
        kind = part.lstrip("@").partition(":")[0]
        paths |= {f.path for f in fields if f.kind in _KIND_ALIASES.get(kind, (kind,))}
    return paths


def candidate_pairs(
    prepared: Prepared,
    rules: Sequence[BlockingRule] = DEFAULT_RULES,
    *,
    max_block: int = 200,
    groups: np.ndarray | None = None,
    keep_rule_pairs: bool = False,
) -> tuple[np.ndarray, np.ndarray, BlockingStats]:
    """Unique candidate pairs (i < j) of `prepared` under any rule. With `groups` (linkage of
    two data sets), only pairs from different groups are kept."""
    stats = BlockingStats()
    n = prepared.size
    codes = []
    for rule in rules:
        i, j, skipped = _pairs_within_blocks(rule_keys(prepared, rule), max_block)
        keep = i != j
        if groups is not None:
            keep &= groups[i] != groups[j]
        i, j = i[keep], j[keep]
        rule_codes = _sorted_unique(i * n + j)
        codes.append(rule_codes)
        if keep_rule_pairs:
            stats.rule_codes[rule.name] = rule_codes
        stats.pairs_by_rule[rule.name] = len(rule_codes)
        stats.skipped_blocks[rule.name] = skipped
    if not codes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), stats
    unique = _sorted_unique(np.concatenate(codes))
    stats.pairs = len(unique)
    return unique // n, unique % n, stats


class BlockingIndex:
    """Sorted blocking keys of a set of records, for matching new records one at a time."""

    def __init__(
        self,
        prepared: Prepared,
        rules: Sequence[BlockingRule] = DEFAULT_RULES,
        *,
        max_block: int = 200,
    ) -> None:
        self.rules = tuple(rules)
        self.max_block = max_block
        self.size = prepared.size
        self._sorted = [_keyed(rule_keys(prepared, rule)) for rule in self.rules]

    def candidates(self, record: Prepared) -> np.ndarray:
        """Indexes (into the indexed records) that share a key with `record` (size 1)."""
        found = []
        for rule, (sorted_keys, ids) in zip(self.rules, self._sorted, strict=True):
            for keys in rule_keys(record, rule):
                key = keys[0]
                if key == 0:
                    continue
                lo = np.searchsorted(sorted_keys, key, side="left")
                hi = np.searchsorted(sorted_keys, key, side="right")
                if 0 < hi - lo <= self.max_block:
                    found.append(ids[lo:hi])
        if not found:
            return np.zeros(0, np.int64)
        return np.unique(np.concatenate(found))
