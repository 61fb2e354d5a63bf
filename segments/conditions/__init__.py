"""The segment condition language: a JSON tree, its JSON Schema, validation, and a pure-Python
reference evaluator (STYLE rule 11: no ORM in here).

Modules: `schema` (the names and the JSON Schema), `validation`, `tree` (walking, pointers,
references, cycles), `values` (value semantics shared with the compiler), `evaluator`,
`words` (plain words) and `dependencies`. Everything public is importable from here.

A definition is data written by marketers and by CRM/CMS systems through the API. It is
validated twice before anything uses it: against `SCHEMA` (shape, allowed keys, safe names) and
by `validate` (operator fits the condition kind and the value's type, dates parse, ranges are
ordered). Every error carries the JSON pointer of the node at fault.

Node forms (version 1):

    {"all": [node, ...]}   {"any": [node, ...]}   {"none": [node, ...]}
    {"trait": "address.city", "op": "eq", "value": "Berlin"}
    {"event": "Product Viewed",
     "where": [{"property": "category", "op": "eq", "value": "Shoes"}],
     "count": {"op": "gte", "value": 2},               # default: at least once
     "within": {"days": 7} | {"hours": 24} | {"between": ["2024-01-01", "2024-01-31"]}}
    {"event": "Product Added", "within": {"hours": 24},
     "not_followed_by": {"event": "Order Completed", "within": {"hours": 1}}}
    {"event": "Order Completed", "first": {"op": "within_last", "value": {"days": 30}}}
    {"computed": "monetary", "op": "gt", "value": 100}
    {"consent": "email_marketing"}     {"has_identifier": "email"}
    {"segment": 12, "member": true}
    {"cluster": 3}                      {"propensity": "purchase_30d", "op": "gte", "value": 0.7}

Semantics shared by the compiler (segments/compiler.py) and the evaluator (`evaluate`), which the
differential test holds equal:
- A condition on a missing value is false; `neq`, `not_in` and `not_exists` are the negation of
  `eq`, `in` and `exists`, so they hold for a missing value.
- Values compare only with values of the same JSON type (1 is not "1", true is not 1).
- `contains` / `starts_with` are case-insensitive (ASCII) substring / prefix tests on strings.
- Date operators on traits look at strings starting with an ISO date (YYYY-MM-DD) and compare
  the date part; on datetime columns they compare the UTC date.
- Event windows are relative to the evaluation time `now`; `not_followed_by` holds when an
  occurrence of the event had its follow-up window elapse with no follow-up event.
"""

from profiles.features import DATETIME_FEATURES as DATETIME_COMPUTED
from profiles.features import NUMERIC_FEATURES as NUMERIC_COMPUTED
from segments.conditions.dependencies import (
    Dependencies,
    dependencies,
)
from segments.conditions.evaluator import (
    EventFact,
    ProfileFacts,
    evaluate,
    evaluate_event,
    explain,
    matching_events,
)
from segments.conditions.schema import (
    COMPUTED,
    COUNT_OPS,
    DATE_OPS,
    DATE_PATTERN,
    DEFINITION_VERSION,
    EVENT_NAME_PATTERN,
    GROUP_KEYS,
    IDENT_PATTERN,
    ISO_DATE_PREFIX,
    KINDS,
    MAX_DEPTH,
    MAX_LIST,
    MAX_NODES,
    MAX_STRING,
    NAME_SEGMENT,
    NUMERIC_OPS,
    OCCURRENCE_OPS,
    OPS,
    PATH_PATTERN,
    PROPENSITIES,
    RECENCY_OPS,
    SCHEMA,
    SCORE_OPS,
    VALUE_OPS,
)
from segments.conditions.tree import (
    find_cycle,
    json_pointer,
    node_kind,
    referenced_segments,
    walk,
    walk_with_pointers,
)
from segments.conditions.validation import (
    ConditionError,
    InvalidDefinition,
    validate,
)
from segments.conditions.values import (
    MISSING,
    compare,
    datetime_matches,
    day_start,
    duration,
    is_number,
    json_type,
    lookup_path,
    recency_matches,
    recency_reference,
    short_repr,
    value_matches,
    window_bounds,
)
from segments.conditions.words import (
    COMPUTED_WORDS,
    COUNT_WORDS,
    OP_WORDS,
    describe,
    describe_node,
)

__all__ = [
    "COMPUTED",
    "COMPUTED_WORDS",
    "COUNT_OPS",
    "COUNT_WORDS",
    "DATETIME_COMPUTED",
    "DATE_OPS",
    "DATE_PATTERN",
    "DEFINITION_VERSION",
    "EVENT_NAME_PATTERN",
    "GROUP_KEYS",
    "IDENT_PATTERN",
    "ISO_DATE_PREFIX",
    "KINDS",
    "MAX_DEPTH",
    "MAX_LIST",
    "MAX_NODES",
    "MAX_STRING",
    "MISSING",
    "NAME_SEGMENT",
    "NUMERIC_COMPUTED",
    "NUMERIC_OPS",
    "OCCURRENCE_OPS",
    "OPS",
    "OP_WORDS",
    "PATH_PATTERN",
    "PROPENSITIES",
    "RECENCY_OPS",
    "SCHEMA",
    "SCORE_OPS",
    "VALUE_OPS",
    "ConditionError",
    "Dependencies",
    "EventFact",
    "InvalidDefinition",
    "ProfileFacts",
    "compare",
    "datetime_matches",
    "day_start",
    "dependencies",
    "describe",
    "describe_node",
    "duration",
    "evaluate",
    "evaluate_event",
    "explain",
    "find_cycle",
    "is_number",
    "json_pointer",
    "json_type",
    "lookup_path",
    "matching_events",
    "node_kind",
    "recency_matches",
    "recency_reference",
    "referenced_segments",
    "short_repr",
    "validate",
    "value_matches",
    "walk",
    "walk_with_pointers",
    "window_bounds",
]
