"""The JSON Schema of a segment definition and the names it allows (version 1)."""

from __future__ import annotations

import re
from typing import Any

from profiles.features import FEATURES as COMPUTED

DEFINITION_VERSION = 1

# One path segment of a trait or property path. No "__" (Django lookup separator) and no
# characters that mean anything to SQL or JSON path syntax.
NAME_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
PATH_PATTERN = rf"^(?!.*__){NAME_SEGMENT}(\.{NAME_SEGMENT}){{0,4}}\Z"
IDENT_PATTERN = r"^[a-z][a-z0-9_]{0,31}\Z"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"
# Free-text names (event names) may hold anything printable; they only ever travel as params.
EVENT_NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,255}\Z"
ISO_DATE_PREFIX = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")

MAX_DEPTH = 8
# Day counts (durations, recency) reach a century at most: every moment computed from one stays
# well inside datetime's range, also from realtime's sentinel `now` in the year 9000.
MAX_DAYS = 36500
# What the profile columns behind numeric computed features can hold (PositiveIntegerField on
# PostgreSQL, DecimalField(14, 2)): a bound outside is refused, not left to the database.
COLUMN_RANGES = {
    "order_count": (0, 2_147_483_647),
    "event_count": (0, 2_147_483_647),
    "session_count": (0, 2_147_483_647),
    "revenue": (-999_999_999_999.99, 999_999_999_999.99),
}
MAX_NODES = 200
MAX_LIST = 1000
MAX_STRING = 1000

GROUP_KEYS = ("all", "any", "none")
VALUE_OPS = ("eq", "neq", "contains", "starts_with", "in", "not_in", "gt", "gte", "lt", "lte")
OPS = (
    *VALUE_OPS,
    "exists",
    "not_exists",
    "between",
    "before",
    "after",
    "within_last",
)
COUNT_OPS = ("eq", "neq", "gt", "gte", "lt", "lte")
OCCURRENCE_OPS = ("before", "after", "within_last", "between")

PROPENSITIES = ("purchase_30d", "churn")

NUMERIC_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "between")
DATE_OPS = ("before", "after", "within_last", "between", "exists", "not_exists")
RECENCY_OPS = ("gt", "gte", "lt", "lte", "between", "exists", "not_exists")
SCORE_OPS = ("gt", "gte", "lt", "lte", "between")


# --- JSON Schema ---------------------------------------------------------------------------

_scalar = {
    "oneOf": [
        {"type": "string", "maxLength": MAX_STRING},
        {"type": "number"},
        {"type": "boolean"},
    ]
}
_duration = {
    "type": "object",
    "oneOf": [
        {
            "properties": {"days": {"type": "integer", "minimum": 0, "maximum": MAX_DAYS}},
            "required": ["days"],
            "additionalProperties": False,
        },
        {
            "properties": {"hours": {"type": "integer", "minimum": 0, "maximum": MAX_DAYS * 24}},
            "required": ["hours"],
            "additionalProperties": False,
        },
    ],
}
_date = {"type": "string", "pattern": DATE_PATTERN}
_value = {
    "oneOf": [
        {"type": "string", "maxLength": MAX_STRING},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "array", "maxItems": MAX_LIST, "items": _scalar},
        _duration,
    ]
}
_filter: dict[str, Any] = {
    "type": "object",
    "properties": {
        "op": {"enum": list(OPS)},
        "value": _value,
    },
    "required": ["op"],
}
_window = {
    "type": "object",
    "oneOf": [
        _duration,
        {
            "properties": {
                "between": {"type": "array", "items": _date, "minItems": 2, "maxItems": 2}
            },
            "required": ["between"],
            "additionalProperties": False,
        },
    ],
}
_where = {
    "type": "array",
    "maxItems": 20,
    "items": {
        **_filter,
        "properties": {
            **_filter["properties"],
            "property": {"type": "string", "pattern": PATH_PATTERN},
        },
        "required": ["property", "op"],
        "additionalProperties": False,
    },
}
KINDS: dict[str, dict[str, Any]] = {
    "all": {"properties": {"all": {"$ref": "#/$defs/nodes"}}},
    "any": {"properties": {"any": {"$ref": "#/$defs/nodes"}}},
    "none": {"properties": {"none": {"$ref": "#/$defs/nodes"}}},
    "trait": {
        "properties": {
            **_filter["properties"],
            "trait": {"type": "string", "pattern": PATH_PATTERN},
        },
        "required": ["trait", "op"],
    },
    "event": {
        "properties": {
            "event": {"type": "string", "pattern": EVENT_NAME_PATTERN},
            "where": _where,
            "count": {
                "type": "object",
                "properties": {
                    "op": {"enum": list(COUNT_OPS)},
                    "value": {"type": "integer", "minimum": 0, "maximum": 1000000},
                },
                "required": ["op", "value"],
                "additionalProperties": False,
            },
            "within": _window,
            "not_followed_by": {
                "type": "object",
                "properties": {
                    "event": {"type": "string", "pattern": EVENT_NAME_PATTERN},
                    "where": _where,
                    "within": _duration,
                },
                "required": ["event", "within"],
                "additionalProperties": False,
            },
            "first": {"$ref": "#/$defs/occurrence"},
            "last": {"$ref": "#/$defs/occurrence"},
        },
    },
    "computed": {
        "properties": {**_filter["properties"], "computed": {"enum": list(COMPUTED)}},
        "required": ["computed", "op"],
    },
    "consent": {"properties": {"consent": {"type": "string", "pattern": IDENT_PATTERN}}},
    "has_identifier": {
        "properties": {"has_identifier": {"type": "string", "pattern": IDENT_PATTERN}}
    },
    "segment": {
        "properties": {
            "segment": {"type": "integer", "minimum": 1},
            "member": {"type": "boolean"},
        }
    },
    "cluster": {"properties": {"cluster": {"type": "integer", "minimum": 0, "maximum": 1000}}},
    "propensity": {
        "properties": {
            "propensity": {"enum": list(PROPENSITIES)},
            "op": {"enum": list(SCORE_OPS)},
            "value": {
                "oneOf": [
                    {"type": "number", "minimum": 0, "maximum": 1},
                    {
                        "type": "array",
                        "items": {"type": "number", "minimum": 0, "maximum": 1},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                ]
            },
        },
        "required": ["propensity", "op", "value"],
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://cdp.example/schemas/segment-definition/v1.json",
    "title": f"Segment definition (version {DEFINITION_VERSION})",
    "$ref": "#/$defs/node",
    "$defs": {
        "nodes": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {"$ref": "#/$defs/node"},
        },
        "occurrence": {
            "type": "object",
            "properties": {"op": {"enum": list(OCCURRENCE_OPS)}, "value": _value},
            "required": ["op", "value"],
            "additionalProperties": False,
        },
        "node": {
            "type": "object",
            # Exactly one kind key decides the node's kind; its sub-schema lists every key the
            # node may carry, so an unexpected key is an error rather than silently ignored.
            "oneOf": [{"required": [kind]} for kind in KINDS],
            "allOf": [
                {
                    "if": {"required": [kind]},
                    "then": {**schema, "additionalProperties": False},
                }
                for kind, schema in KINDS.items()
            ],
        },
    },
}
