"""Evidence beyond names: which comparison levels tell two people apart, and which say they
are two people.

Names collide: a small shop has several Anna Smiths, and a score can add up name agreements
to a near-certain match. So a pair merges automatically only when at least one discriminating
field agrees (a birthday, allowing one typo or a day/month swap; a street address with its
house number, not only its city; a phone; an email's local part; an id) and no strong field
conflicts (two birthdays more than a typo apart, or one digit apart but decades apart, a
parent and a namesake child born on the same day; two phones; two countries). Two phones one
digit apart count neither way: a mistyped number, or a neighbouring line. A pair without such
evidence, or with a conflict, waits for review at most.

One agreement outranks a conflict: an id the business gives one person (a national id, a CRM
id: kind "id") agreeing exactly. Two people do not share one, so the conflicting birthday is
the typo (FEBRL's corrupted records are mostly that). Nothing else does: a household shares a
street and a landline, father and son a name. The rule reads only the per-field comparison
levels, so it is the same wherever pairs are scored.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from identity.matching.fields import LEVELS, FieldSpec, compared_fields

# kind → the levels at which the field tells one person from another with the same name.
SUPPORT: dict[str, tuple[str, ...]] = {
    "date": ("exact", "day_month_swapped", "damerau<=1"),
    "address": ("exact", "same_street_same_area", "same_number_similar_street_same_area"),
    "street": ("exact", "same_number_similar_name"),
    "phone": ("exact",),
    "email": ("exact", "same_local_part"),
    # Exact only: customer numbers are often consecutive, one typo apart for two people.
    "id": ("exact",),
}
# kind → the levels at which the field says "two people": both values present, and apart
# beyond what a typo explains.
CONFLICT: dict[str, tuple[str, ...]] = {
    "date": ("same_year_month", "else"),
    "phone": ("else",),
    "address": ("different_country",),
}
# kind → the levels that outrank a conflict (see above).
OVERRIDE: dict[str, tuple[str, ...]] = {"id": ("exact",)}


@functools.cache
def _table(kind: str, named: tuple[str, ...]) -> np.ndarray:
    """A boolean per level of `kind` (index 0, null, False): whether it is one of `named`."""
    levels = LEVELS[kind]
    out = np.zeros(len(levels) + 1, dtype=bool)
    for level in named:
        out[levels.index(level) + 1] = True
    return out


def _marked(
    fields: Sequence[FieldSpec], levels: np.ndarray, rule: dict[str, tuple[str, ...]]
) -> np.ndarray:
    """Per pair and compared field: whether the field's level is one `rule` names."""
    compared = compared_fields(fields)
    out = np.zeros(levels.shape, dtype=bool)
    for column, spec in enumerate(compared):
        if spec.kind in rule:
            out[:, column] = _table(spec.kind, rule[spec.kind])[levels[:, column]]
    return out


def field_marks(fields: Sequence[FieldSpec], levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(evidence, conflict) per pair and compared field: the field agrees discriminatingly;
    the field conflicts."""
    return _marked(fields, levels, SUPPORT), _marked(fields, levels, CONFLICT)


def pairs_evidence(
    fields: Sequence[FieldSpec], levels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(supported, conflicted) per pair: some discriminating field agrees; some strong field
    conflicts, and no exact id outranks it."""
    evidence, conflict = field_marks(fields, levels)
    outranked = _marked(fields, levels, OVERRIDE).any(axis=1)
    return np.asarray(evidence.any(axis=1)), np.asarray(conflict.any(axis=1) & ~outranked)
