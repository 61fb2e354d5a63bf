"""Fuzzy matching, the pure core: no ORM, no I/O (STYLE.md rule 11).

Profiles are compared on what they are (names, birthday, address, email, phone, ids), never
on which identifiers created them. The flow:

1. `records_prepare` normalizes a column-wise batch of traits once per *distinct* value
   (names: NFKC, case-fold, accents stripped; postcodes; dates incl. their parts; phonetic
   codes), so a million profiles cost as much as their distinct values.
2. `pairs_compare` turns candidate pairs (from `identity.blocking`) into comparison levels,
   field by field, vectorised with rapidfuzz's `cpdist` (the same Jaro-Winkler and
   Damerau-Levenshtein scores jellyfish gives, computed in C over whole arrays).
3. `Model` holds Fellegi-Sunter m/u probabilities per level: u from random pairs, m and the
   prior from EM over the candidate pairs (no labels), optionally refined from staff decisions
   (`model_refine`), each level's weight log2(m/u) within bounds that keep small data sane.
   A pair's score is the sum of per-field weights plus the prior, an exact name agreement
   weighed by how common the name is (`pairs_score`, Splink's term-frequency adjustment).
4. `pairs_decide` turns scores into merge / review / nothing: a merge also needs evidence
   beyond names and no conflicting strong field (`pairs_evidence`); `pair_explain` gives
   every field's level, values, weight and role, conflicts first.

Modules, in flow order: `normalizers` (one value → normalized string), `fields` (the field
set and comparison levels), `prepare` (1.), `compare` (2.), `frequency` and `model` (3.),
`evidence` and `explain` (4. and the thresholds). Callers import from `identity.matching`.
"""

from identity.matching.compare import WORKERS, pairs_compare
from identity.matching.evidence import CONFLICT, SUPPORT, pairs_evidence
from identity.matching.explain import (
    Explanation,
    FieldScore,
    Thresholds,
    pair_explain,
    pairs_decide,
    pairs_explain,
    review_reason,
)
from identity.matching.fields import (
    ADDRESS_PARTS,
    DEFAULT_FIELDS,
    KINDS,
    LEVELS,
    FieldSpec,
    compared_fields,
    fields_from_config,
    trait_get,
)
from identity.matching.frequency import TermFrequencies, frequencies_count, pairs_score
from identity.matching.model import (
    MODEL_FORMAT,
    Model,
    em_fit,
    model_refine,
    models_combine,
    prior_estimate,
    u_blend,
    u_default,
    u_estimate,
    weight_bounds,
    weight_to_probability,
)
from identity.matching.normalizers import (
    NICKNAMES,
    SEPARATOR,
    country_normalize,
    date_normalize,
    email_fold,
    id_normalize,
    name_canonical,
    name_normalize,
    phone_digits,
    postcode_normalize,
    street_split,
    text_fold,
)
from identity.matching.prepare import Prepared, columns_from_traits, records_prepare

__all__ = [
    "ADDRESS_PARTS",
    "CONFLICT",
    "DEFAULT_FIELDS",
    "KINDS",
    "LEVELS",
    "MODEL_FORMAT",
    "NICKNAMES",
    "SEPARATOR",
    "SUPPORT",
    "WORKERS",
    "Explanation",
    "FieldScore",
    "FieldSpec",
    "Model",
    "Prepared",
    "TermFrequencies",
    "Thresholds",
    "columns_from_traits",
    "compared_fields",
    "country_normalize",
    "date_normalize",
    "em_fit",
    "email_fold",
    "fields_from_config",
    "frequencies_count",
    "id_normalize",
    "model_refine",
    "models_combine",
    "name_canonical",
    "name_normalize",
    "pair_explain",
    "pairs_compare",
    "pairs_decide",
    "pairs_evidence",
    "pairs_explain",
    "pairs_score",
    "phone_digits",
    "postcode_normalize",
    "prior_estimate",
    "records_prepare",
    "review_reason",
    "street_split",
    "text_fold",
    "trait_get",
    "u_blend",
    "u_default",
    "u_estimate",
    "weight_bounds",
    "weight_to_probability",
]
