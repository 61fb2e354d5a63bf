"""Term-frequency adjustments, as Splink makes them: agreeing on a common name is weaker
evidence than agreeing on a rare one.

Two different people agree exactly on a name as often as the field's u says on average (the sum
of the squared shares of all names); for one name v it is f(v), the share of profiles called v.
So the exact level's weight log2(m/u) becomes log2(m/f(v)): "Smith", in a shop where one
customer in twenty is a Smith, weighs log2(m/0.05); a name two profiles share weighs more.

The shares are counted over the project's own profiles at the full rescan and saved with the
model, so an incremental run weighs a name as the full run did. A rare name's boost is capped at
MAX_BOOST bits (a name seen twice is no fingerprint): every value rarer than u / 2**MAX_BOOST,
or never seen, counts as that floor, so the saved table holds only the values above it (fewer
than 2**MAX_BOOST / u of them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from identity.matching.fields import FieldSpec, compared_fields
from identity.matching.prepare import Prepared

if TYPE_CHECKING:
    from identity.matching.model import Model

TERM_KINDS = ("first_name", "last_name")
MAX_BOOST = 2.0
_EXACT = 1  # the level whose weight the frequencies adjust


@dataclass(frozen=True)
class TermFrequencies:
    """Shares of one field's values among the profiles that have it: those above `floor`;
    every other value counts as `floor`."""

    shares: Mapping[str, float]
    floor: float

    def of(self, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        return np.array([max(self.shares.get(v, 0.0), self.floor) for v in values], np.float64)

    def to_json(self) -> dict[str, Any]:
        return {"floor": self.floor, "shares": dict(self.shares)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TermFrequencies:
        shares = {str(k): float(v) for k, v in dict(data["shares"]).items()}
        return cls(shares, float(data["floor"]))


def frequencies_count(
    *, prepared: Prepared, fields: Sequence[FieldSpec], u: Sequence[np.ndarray]
) -> dict[str, TermFrequencies]:
    """The shares of each name field's values in `prepared`, given the fields' u (whose exact
    level sets the floor)."""
    out = {}
    for column, spec in enumerate(compared_fields(fields)):
        if spec.kind not in TERM_KINDS:
            continue
        codes, uniques = prepared.coded(spec.path)
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        floor = float(u[column][_EXACT]) / 2**MAX_BOOST
        shares = counts / max(int(counts.sum()), 1)
        kept = np.nonzero(shares > floor)[0]
        out[spec.path] = TermFrequencies(
            {str(uniques[k]): round(float(shares[k]), 8) for k in kept.tolist()}, floor
        )
    return out


def frequency_adjustment(
    model: Model, column: int, left: Prepared, li: np.ndarray, levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, bits) for one compared field: the pairs agreeing exactly on it and what their
    value's frequency adds to the exact level's weight, log2(u / f(v))."""
    spec = model.compared[column]
    table = model.frequencies.get(spec.path)
    exact = np.nonzero(levels[:, column] == _EXACT)[0]
    if table is None or len(exact) == 0:
        return exact[:0], np.zeros(0)
    rows = li[exact]
    if left.size > 64:  # a batch: one look-up per distinct value
        codes, uniques = left.coded(spec.path)
        shares = table.of(uniques)[codes[rows]]
    else:
        shares = table.of(left.cols[spec.path][rows])
    return exact, np.log2(max(float(model.u[column][_EXACT]), 1e-12) / shares)


def pairs_score(model: Model, left: Prepared, li: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Each pair's total match weight: the model's score of its levels, names weighed by
    their frequency (`left` holds the values; exact agreement means both sides hold them)."""
    total = model.score(levels)
    for column in range(len(model.compared)):
        exact, bits = frequency_adjustment(model, column, left, li, levels)
        total[exact] += bits
    return total
