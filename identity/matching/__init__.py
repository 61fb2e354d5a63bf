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
   (`model_refine`). A pair's score is the sum of per-field log2(m/u) weights plus the prior.
4. `pair_explain` gives every field's level, values and weight, so each score is explainable.

Modules, in flow order: `normalizers` (one value → normalized string), `fields` (the field
set and comparison levels), `prepare` (1.), `compare` (2.), `model` (3.), `explain` (4. and
the thresholds). Callers import from `identity.matching`.
"""

from identity.matching.compare import WORKERS, pairs_compare
from identity.matching.explain import (
    Explanation,
    FieldScore,
    Thresholds,
    pair_explain,
    pairs_explain,
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
from identity.matching.model import (
    Model,
    em_fit,
    model_refine,
    models_combine,
    prior_estimate,
    probability_to_weight,
    u_default,
    u_estimate,
    weight_to_probability,
)
from identity.matching.normalizers import (
    NICKNAMES,
    SEPARATOR,
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
    "DEFAULT_FIELDS",
    "KINDS",
    "LEVELS",
    "NICKNAMES",
    "SEPARATOR",
    "WORKERS",
    "Explanation",
    "FieldScore",
    "FieldSpec",
    "Model",
    "Prepared",
    "Thresholds",
    "columns_from_traits",
    "compared_fields",
    "date_normalize",
    "em_fit",
    "email_fold",
    "fields_from_config",
    "id_normalize",
    "model_refine",
    "models_combine",
    "name_canonical",
    "name_normalize",
    "pair_explain",
    "pairs_compare",
    "pairs_explain",
    "phone_digits",
    "postcode_normalize",
    "prior_estimate",
    "probability_to_weight",
    "records_prepare",
    "street_split",
    "text_fold",
    "trait_get",
    "u_default",
    "u_estimate",
    "weight_to_probability",
]
