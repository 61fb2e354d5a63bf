"""Comparison levels, vectorised over candidate pairs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, Hamming, JaroWinkler
from rapidfuzz.process import cpdist

from identity.matching.fields import FieldSpec, compared_fields
from identity.matching.prepare import Prepared

# rapidfuzz's worker threads per similarity batch (the scorers release the GIL).
WORKERS = 1


def _similarity(a: Sequence[str], b: Sequence[str], scorer: Any, **kwargs: Any) -> np.ndarray:
    if len(a) == 0:
        return np.zeros(0, dtype=np.float64)
    return cpdist(list(a), list(b), scorer=scorer, workers=WORKERS, **kwargs)


def _bucket(null: np.ndarray, conditions: Sequence[np.ndarray | None]) -> np.ndarray:
    """Level per pair: 0 if null, else the first true condition (1-based), else the last."""
    n = len(null)
    levels = np.full(n, len(conditions) + 1, dtype=np.int8)
    remaining = ~null
    for number, cond in enumerate(conditions, start=1):
        if cond is None:
            continue
        hit = remaining & cond
        levels[hit] = number
        remaining &= ~hit
    levels[null] = 0
    return levels


class _Pairs:
    """Column access for a set of pairs. Within one batch (dedupe) equality is a comparison
    of integer codes and each similarity is computed once per distinct pair of values; across
    batches (one new record against an index) plain strings are compared."""

    def __init__(self, left: Prepared, right: Prepared, li: np.ndarray, ri: np.ndarray) -> None:
        self.left, self.right, self.li, self.ri = left, right, li, ri
        self.same = left is right
        self.n = len(li)

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.same:
            return None
        codes, _ = self.left.coded(column)
        return codes[self.li], codes[self.ri]

    def values(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        return self.left.cols[column][self.li], self.right.cols[column][self.ri]

    def present(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        coded = self.codes(column)
        if coded is not None:
            return coded[0] >= 0, coded[1] >= 0
        a, b = self.values(column)
        return a != "", b != ""

    def equal(self, column: str) -> np.ndarray:
        """Both present and equal."""
        coded = self.codes(column)
        if coded is not None:
            return (coded[0] == coded[1]) & (coded[0] >= 0)
        a, b = self.values(column)
        return (a == b) & (a != "")

    def similarity(
        self,
        column: str,
        scorer: Any,
        mask: np.ndarray,
        fill: float,
        other: str | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """scorer(left[column], right[other or column]) where `mask`, `fill` elsewhere."""
        out = np.full(self.n, fill, dtype=np.float64)
        idx = np.nonzero(mask)[0]
        if len(idx) == 0:
            return out
        other = other or column
        if self.same and other == column:
            codes, uniques = self.left.coded(column)
            ca, cb = codes[self.li[idx]].astype(np.int64), codes[self.ri[idx]].astype(np.int64)
            if len(uniques) * 4 < self.left.size:  # few distinct values: dedupe value pairs
                keys = ca * len(uniques) + cb
                inverse, distinct = pd.factorize(keys)
                scores = _similarity(
                    uniques[distinct // len(uniques)],
                    uniques[distinct % len(uniques)],
                    scorer,
                    **kwargs,
                )
                out[idx] = scores[inverse]
                return out
            out[idx] = _similarity(uniques[ca], uniques[cb], scorer, **kwargs)
            return out
        a = self.left.cols[column][self.li[idx]]
        b = self.right.cols[other][self.ri[idx]]
        out[idx] = _similarity(a, b, scorer, **kwargs)
        return out


def _jw(pairs: _Pairs, column: str, mask: np.ndarray, other: str | None = None) -> np.ndarray:
    return pairs.similarity(
        column, JaroWinkler.normalized_similarity, mask, 0.0, other, score_cutoff=0.75
    )


def _osa(pairs: _Pairs, column: str, mask: np.ndarray, cutoff: int) -> np.ndarray:
    # Optimal string alignment: Damerau-Levenshtein where no substring is edited twice, the
    # same as jellyfish's for the one or two typos that matter here, and bit-parallel fast.
    return pairs.similarity(column, OSA.distance, mask, 99.0, score_cutoff=cutoff)


def _compare_field(spec: FieldSpec, pairs: _Pairs, partner: str | None) -> np.ndarray:
    p = spec.path
    has_a, has_b = pairs.present(p)
    null = ~has_a | ~has_b
    exact = pairs.equal(p)
    todo = ~null & ~exact
    kind = spec.kind

    if kind in ("first_name", "last_name"):
        sim = _jw(pairs, p, todo)
        swapped = None
        if partner is not None:
            # Entered the wrong way round: this name is (nearly) the other side's partner name.
            _, partner_b = pairs.present(partner)
            cross = _jw(pairs, p, todo & partner_b & (sim < 0.84), other=partner)
            swapped = cross >= 0.88
        if kind == "first_name":
            can = pairs.equal(f"{p}:canonical") & todo
            conds = [exact, can, sim >= 0.92, sim >= 0.84, swapped]
        else:
            phon = pairs.equal(f"{p}:phonetic") & todo
            conds = [exact, sim >= 0.92, sim >= 0.84, swapped, phon]
        return _bucket(null, conds)
    if kind == "date":
        ya, yb = pairs.values(f"{p}:y")
        ma, mb = pairs.values(f"{p}:m")
        da, db = pairs.values(f"{p}:d")
        swapped = (ya == yb) & (ma == db) & (da == mb)
        dist = _osa(pairs, p, todo & ~swapped, 2)
        # One slip, unless one digit moved the year by more than a decade: "1950-03-12" and
        # "1980-03-12" are a parent and a namesake child born on the same day as often as a
        # typo. Two neighbouring digits swapped ("1958" for "1985") stay a typo.
        far = (dist <= 1) & (np.abs(ya - yb) > 10)
        decades = pairs.similarity(p, Hamming.distance, far, 0.0) == 1
        return _bucket(null, [exact, swapped, (dist <= 1) & ~decades, (ya == yb) & (ma == mb)])
    if kind == "postcode":
        return _bucket(null, [exact, _osa(pairs, p, todo, 2) <= 1])
    if kind == "street":
        same_number = pairs.equal(f"{p}:number")
        sim_name = _jw(pairs, f"{p}:name", todo)
        return _bucket(
            null, [exact, same_number & (sim_name >= 0.88), sim_name >= 0.88, same_number]
        )
    if kind == "address":
        return _compare_address(p, pairs, null, exact, todo)
    if kind in ("city", "text"):
        sim = _jw(pairs, p, todo)
        return _bucket(null, [exact, sim >= 0.92, sim >= 0.8])
    if kind == "email":
        local = pairs.equal(f"{p}:local") & todo
        # A typo keeps the digits: "ann.lee12@" vs "ann.lee21@" are two people's addresses.
        a_digits, b_digits = pairs.values(f"{p}:digits")
        typo = todo & ~local & (a_digits == b_digits)
        return _bucket(null, [exact, local, _osa(pairs, p, typo, 3) <= 2])
    if kind == "phone":
        return _bucket(null, [exact, _osa(pairs, p, todo, 2) <= 1])
    if kind == "id":
        dist = _osa(pairs, p, todo, 3)
        return _bucket(null, [exact, dist <= 1, dist <= 2])
    return _bucket(null, [exact])  # "exact"


def _compare_address(
    p: str, pairs: _Pairs, null: np.ndarray, exact: np.ndarray, todo: np.ndarray
) -> np.ndarray:
    def both(name: str) -> np.ndarray:
        has_a, has_b = pairs.present(f"{p}:{name}")
        return todo & has_a & has_b

    post_dist = _osa(pairs, f"{p}:postcode", both("postcode"), 2)
    city_sim = _jw(pairs, f"{p}:city", both("city"))
    street_a, street_b = pairs.present(f"{p}:street")
    street_both = todo & street_a & street_b
    same_street = pairs.equal(f"{p}:street")
    same_area = (post_dist <= 1) | (city_sim >= 0.9)
    # Street similarity only counts in the same area: computed only there.
    near = street_both & same_area & ~same_street
    street_sim = _jw(pairs, f"{p}:street", near)
    name_a, name_b = pairs.present(f"{p}:street_name")
    same_number = pairs.equal(f"{p}:street_number")
    named = name_a & name_b
    name_sim = _jw(pairs, f"{p}:street_name", near & same_number & named)
    numbered_street = same_number & named & (name_sim >= 0.88)
    similar_street = (same_number & ~named) | (street_sim >= 0.88)
    same_postcode = pairs.equal(f"{p}:postcode")
    same_city = pairs.equal(f"{p}:city") | (city_sim >= 0.92)
    country_a, country_b = pairs.present(f"{p}:country")
    here = ~(todo & country_a & country_b & ~pairs.equal(f"{p}:country"))
    conds = [
        exact,
        same_street & same_area & here,
        numbered_street & same_area & here,
        similar_street & same_area & here,
        same_postcode & here,
        same_city & here,
        ~here,
    ]
    return _bucket(null, conds)


def _partners(fields: Sequence[FieldSpec]) -> dict[str, str]:
    first = next((f.path for f in fields if f.kind == "first_name"), None)
    last = next((f.path for f in fields if f.kind == "last_name"), None)
    if first and last:
        return {first: last, last: first}
    return {}


def pairs_compare(left: Prepared, right: Prepared, li: np.ndarray, ri: np.ndarray) -> np.ndarray:
    """Comparison levels, shape (pairs, compared fields), int8; level 0 means "a side is null"."""
    fields = compared_fields(left.fields)
    li = np.asarray(li, dtype=np.int64)
    ri = np.asarray(ri, dtype=np.int64)
    partners = _partners(fields)
    pairs = _Pairs(left, right, li, ri)
    out = np.zeros((len(li), len(fields)), dtype=np.int8)
    for column, spec in enumerate(fields):
        out[:, column] = _compare_field(spec, pairs, partners.get(spec.path))
    return out
