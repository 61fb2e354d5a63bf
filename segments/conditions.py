"""The segment condition language: a JSON tree, its JSON Schema, validation, and a pure-Python
reference evaluator (STYLE rule 11: no ORM in here).

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

Semantics shared by the compiler (segments/compiler.py) and `evaluate` below, which the
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

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

DEFINITION_VERSION = 1

# One path segment of a trait or property path. No "__" (Django lookup separator) and no
# characters that mean anything to SQL or JSON path syntax.
NAME_SEGMENT = r"[A-Za-z_][A-Za-z0-9_]{0,63}"
PATH_PATTERN = rf"^(?!.*__){NAME_SEGMENT}(\.{NAME_SEGMENT}){{0,4}}$"
IDENT_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# Free-text names (event names) may hold anything printable; they only ever travel as params.
EVENT_NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,255}$"
ISO_DATE_PREFIX = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}")

MAX_DEPTH = 8
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

# Computed features: numeric columns, datetime columns, and recency (days since the last order,
# or since last seen when there was none).
NUMERIC_COMPUTED = {
    "frequency": "order_count",
    "monetary": "revenue",
    "lifetime_value": "revenue",
    "order_count": "order_count",
    "revenue": "revenue",
    "event_count": "event_count",
    "session_count": "session_count",
}
DATETIME_COMPUTED = {
    "last_seen": "last_seen",
    "first_seen": "first_seen",
    "first_order_at": "first_order_at",
    "last_order_at": "last_order_at",
}
COMPUTED = (*NUMERIC_COMPUTED, *DATETIME_COMPUTED, "recency")
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
            "properties": {"days": {"type": "integer", "minimum": 0, "maximum": 36500}},
            "required": ["days"],
            "additionalProperties": False,
        },
        {
            "properties": {"hours": {"type": "integer", "minimum": 0, "maximum": 876000}},
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
_filter = {
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
_kinds: dict[str, dict[str, Any]] = {
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
            "oneOf": [{"required": [kind]} for kind in _kinds],
            "allOf": [
                {
                    "if": {"required": [kind]},
                    "then": {**schema, "additionalProperties": False},
                }
                for kind, schema in _kinds.items()
            ],
        },
    },
}


# --- Validation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConditionError:
    pointer: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message}


class InvalidDefinition(ValueError):
    def __init__(self, errors: list[ConditionError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.pointer or '/'}: {e.message}" for e in errors))


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def node_kind(node: Mapping[str, Any]) -> str:
    for kind in _kinds:
        if kind in node:
            return kind
    raise KeyError("no kind")


_validator = None


def _node_schema() -> dict[str, Any]:
    return SCHEMA["$defs"]["node"]


def _schema_validator() -> Any:
    global _validator
    if _validator is None:
        from jsonschema import Draft202012Validator

        Draft202012Validator.check_schema(SCHEMA)
        _validator = Draft202012Validator(SCHEMA)
    return _validator


def _schema_errors(definition: Any) -> list[ConditionError]:
    from jsonschema.exceptions import best_match

    errors = list(_schema_validator().iter_errors(definition))
    if not errors:
        return []
    # The deepest error points at the offending node most precisely.
    deepest = max(len(e.absolute_path) for e in errors)
    found: list[ConditionError] = []
    seen = set()
    for error in errors:
        if len(error.absolute_path) != deepest:
            continue
        best = best_match([error])
        pointer = _pointer(best.absolute_path)
        if pointer in seen:
            continue
        seen.add(pointer)
        message = best.message
        if len(message) > 300:
            message = message[:300] + "…"
        if best.validator == "pattern":
            if best.schema.get("pattern") == PATH_PATTERN:
                message = (
                    f"{_short(best.instance)} is not a valid path: dot-separated names of "
                    "letters, digits and _ (no __), at most 5 levels"
                )
            elif best.schema.get("pattern") == EVENT_NAME_PATTERN:
                message = "event names are 1 to 255 printable characters"
            elif best.schema.get("pattern") == DATE_PATTERN:
                message = f"{_short(best.instance)} is not a date YYYY-MM-DD"
            else:
                message = (
                    f"{_short(best.instance)} is not a valid name: lower-case letters, digits, _"
                )
        elif best.validator == "oneOf" and best.schema is _node_schema():
            message = "a condition needs exactly one of: " + ", ".join(_kinds)
        elif best.validator == "oneOf" and pointer.endswith("/value"):
            message = (
                "value must be a string, number, boolean, a list of those, "
                'or {"days": N} / {"hours": N}'
            )
        found.append(ConditionError(pointer, message))
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _parse_date(value: Any) -> dt.date | None:
    """A date YYYY-MM-DD before the year 8000 (later years are reserved: see
    segments.services.SENTINEL_NOW)."""
    if not isinstance(value, str) or not re.match(DATE_PATTERN, value):
        return None
    try:
        date = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return date if date.year < 8000 else None


def _check_value(op: str, value: Any, has_value: bool, *, numeric_only: bool = False) -> str | None:
    """The semantic check of one (op, value) pair; returns the problem or None."""
    if op in ("exists", "not_exists"):
        return "exists/not_exists take no value" if has_value else None
    if not has_value:
        return f"operator {op!r} needs a value"
    if op in ("eq", "neq"):
        ok = (
            _is_number(value)
            if numeric_only
            else (isinstance(value, str | bool) or _is_number(value))
        )
        return (
            None
            if ok
            else f"{op!r} needs a {'number' if numeric_only else 'string, number or boolean'}"
        )
    if op in ("contains", "starts_with"):
        return None if isinstance(value, str) and value else f"{op!r} needs a non-empty string"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value:
            return f"{op!r} needs a non-empty list"
        if not all(isinstance(v, str | bool) or _is_number(v) for v in value):
            return f"{op!r} needs a list of strings, numbers or booleans"
        return None
    if op in ("gt", "gte", "lt", "lte"):
        return None if _is_number(value) else f"{op!r} needs a number"
    if op == "between":
        if isinstance(value, list) and len(value) == 2:
            if all(_is_number(v) for v in value):
                return (
                    None if value[0] <= value[1] else "between needs [low, high] with low <= high"
                )
            if not numeric_only:
                dates = [_parse_date(v) for v in value]
                if all(dates):
                    return (
                        None if dates[0] <= dates[1] else "between needs [from, to] with from <= to"
                    )  # type: ignore[operator]
        return (
            "between needs [low, high] (two numbers"
            + ("" if numeric_only else " or two dates YYYY-MM-DD")
            + ")"
        )
    if op in ("before", "after"):
        return None if _parse_date(value) else f"{op!r} needs a date YYYY-MM-DD"
    if op == "within_last":
        if isinstance(value, dict) and len(value) == 1 and set(value) <= {"days", "hours"}:
            amount = next(iter(value.values()))
            if isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0:
                return None
        return 'within_last needs {"days": N} or {"hours": N}'
    return f"unknown operator {op!r}"


def validate(definition: Any, *, segment_exists: Callable[[int], bool] | None = None) -> None:
    """Raise InvalidDefinition listing every problem (with its JSON pointer), or return."""
    errors = _schema_errors(definition)
    if errors:
        raise InvalidDefinition(errors)
    errors = []
    count = 0

    def check(node: Mapping[str, Any], path: list[Any], depth: int) -> None:
        nonlocal count
        count += 1
        here = _pointer(path)
        if depth > MAX_DEPTH:
            errors.append(ConditionError(here, f"groups nest at most {MAX_DEPTH} deep"))
            return
        kind = node_kind(node)
        if kind in GROUP_KEYS:
            for i, child in enumerate(node[kind]):
                check(child, [*path, kind, i], depth + 1)
        elif kind == "trait":
            problem = _check_value(node["op"], node.get("value"), "value" in node)
            if problem is None and node["op"] == "within_last" and "days" not in node["value"]:
                problem = 'within_last on a trait counts days: {"days": N}'
            if problem:
                errors.append(ConditionError(here, problem))
        elif kind == "event":
            _check_event(node, path, errors)
        elif kind == "computed":
            _check_computed(node, here, errors)
        elif kind == "propensity":
            problem = _check_value(node["op"], node["value"], True, numeric_only=True)
            if problem:
                errors.append(ConditionError(here, problem))
        elif (
            kind == "segment" and segment_exists is not None and not segment_exists(node["segment"])
        ):
            errors.append(ConditionError(here, f"segment {node['segment']} does not exist"))

    check(definition, [], 1)
    if count > MAX_NODES:
        errors.append(ConditionError("", f"a definition holds at most {MAX_NODES} conditions"))
    if errors:
        raise InvalidDefinition(errors)


def _check_filters(filters: list[dict], path: list[Any], errors: list[ConditionError]) -> None:
    for i, item in enumerate(filters):
        problem = _check_value(item["op"], item.get("value"), "value" in item)
        if problem is None and item["op"] in ("before", "after", "within_last"):
            problem = "date operators are not available on event properties"
        if (
            problem is None
            and item["op"] == "between"
            and not all(_is_number(v) for v in item["value"])
        ):
            problem = "between on an event property needs two numbers"
        if problem:
            errors.append(ConditionError(_pointer([*path, i]), problem))


def _check_event(node: Mapping[str, Any], path: list[Any], errors: list[ConditionError]) -> None:
    here = _pointer(path)
    _check_filters(node.get("where", []), [*path, "where"], errors)
    occurrence = [key for key in ("first", "last") if key in node]
    if len(occurrence) > 1:
        errors.append(ConditionError(here, "use either first or last, not both"))
    if occurrence:
        if any(key in node for key in ("count", "within", "not_followed_by")):
            errors.append(
                ConditionError(
                    here, "first/last cannot be combined with count, within or not_followed_by"
                )
            )
        spec = node[occurrence[0]]
        problem = _check_value(spec["op"], spec["value"], True)
        if (
            problem is None
            and spec["op"] == "between"
            and not all(_parse_date(v) for v in spec["value"])
        ):
            problem = "between on an occurrence needs two dates YYYY-MM-DD"
        if problem:
            errors.append(ConditionError(_pointer([*path, occurrence[0]]), problem))
    window = node.get("within")
    if window and "between" in window:
        start, end = (_parse_date(v) for v in window["between"])
        if start is None or end is None or start > end:
            errors.append(
                ConditionError(
                    _pointer([*path, "within"]), "between needs two valid dates, from <= to"
                )
            )
    follow = node.get("not_followed_by")
    if follow is not None:
        if "count" in node:
            errors.append(ConditionError(here, "not_followed_by cannot be combined with count"))
        _check_filters(follow.get("where", []), [*path, "not_followed_by", "where"], errors)


def _check_computed(node: Mapping[str, Any], here: str, errors: list[ConditionError]) -> None:
    name, op = node["computed"], node["op"]
    if name in NUMERIC_COMPUTED:
        allowed = NUMERIC_OPS
    elif name in DATETIME_COMPUTED:
        allowed = DATE_OPS
    else:
        allowed = RECENCY_OPS
    if op not in allowed:
        errors.append(ConditionError(here, f"{name} takes one of: {', '.join(allowed)}"))
        return
    problem = _check_value(
        op, node.get("value"), "value" in node, numeric_only=name not in DATETIME_COMPUTED
    )
    if (
        problem is None
        and name in DATETIME_COMPUTED
        and op == "between"
        and not all(_parse_date(v) for v in node["value"])
    ):
        problem = "between on a date needs two dates YYYY-MM-DD"
    if problem:
        errors.append(ConditionError(here, problem))


def referenced_segments(definition: Mapping[str, Any]) -> set[int]:
    """Ids of the segments this definition refers to directly."""
    found: set[int] = set()
    for node in walk(definition):
        if "segment" in node:
            found.add(int(node["segment"]))
    return found


def walk_with_pointers(
    node: Mapping[str, Any], path: tuple[Any, ...] = ()
) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(JSON pointer, node) for every node, depth first."""
    yield _pointer(path), node
    for key in GROUP_KEYS:
        for i, child in enumerate(node.get(key, ())):
            yield from walk_with_pointers(child, (*path, key, i))


def walk(node: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield node
    for key in GROUP_KEYS:
        for child in node.get(key, ()):
            yield from walk(child)


def find_cycle(
    segment_id: int | None,
    definition: Mapping[str, Any],
    definitions: Callable[[int], Mapping[str, Any] | None],
) -> list[int] | None:
    """The chain of segment ids that leads back to `segment_id` (or loops), else None."""

    def visit(current: Mapping[str, Any], chain: list[int]) -> list[int] | None:
        for ref in sorted(referenced_segments(current)):
            if ref == segment_id or ref in chain:
                return [*chain, ref]
            target = definitions(ref)
            if target is not None:
                found = visit(target, [*chain, ref])
                if found:
                    return found
        return None

    return visit(definition, [segment_id] if segment_id else [])


# --- Dependencies (what a change must touch for a segment to need re-evaluation) -----------


@dataclass
class Dependencies:
    trait_keys: set[str] = field(default_factory=set)
    event_names: set[str] = field(default_factory=set)
    computed: set[str] = field(default_factory=set)
    identifiers: set[str] = field(default_factory=set)
    consents: set[str] = field(default_factory=set)
    scores: set[str] = field(default_factory=set)
    # Conditions relative to "now" change without any event: the scheduled refresh handles them.
    time_relative: bool = False
    # within_last on a trait compares date strings computed from "now".
    date_windows: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "trait_keys": sorted(self.trait_keys),
            "event_names": sorted(self.event_names),
            "computed": sorted(self.computed),
            "identifiers": sorted(self.identifiers),
            "consents": sorted(self.consents),
            "scores": sorted(self.scores),
            "time_relative": self.time_relative,
            "date_windows": self.date_windows,
        }


def dependencies(
    definition: Mapping[str, Any], definitions: Callable[[int], Mapping[str, Any] | None]
) -> Dependencies:
    deps = Dependencies()

    def visit(node: Mapping[str, Any], seen: frozenset[int]) -> None:
        kind = node_kind(node)
        if kind in GROUP_KEYS:
            for child in node[kind]:
                visit(child, seen)
        elif kind == "trait":
            deps.trait_keys.add(node["trait"].split(".")[0])
            deps.time_relative |= node["op"] == "within_last"
            deps.date_windows |= node["op"] == "within_last"
        elif kind == "event":
            deps.event_names.add(node["event"])
            if "not_followed_by" in node:
                deps.event_names.add(node["not_followed_by"]["event"])
                deps.time_relative = True
            window = node.get("within") or {}
            deps.time_relative |= "days" in window or "hours" in window
            for key in ("first", "last"):
                if key in node and node[key]["op"] == "within_last":
                    deps.time_relative = True
        elif kind == "computed":
            deps.computed.add(node["computed"])
            deps.time_relative |= node["computed"] == "recency" or node["op"] == "within_last"
        elif kind == "has_identifier":
            deps.identifiers.add(node["has_identifier"])
        elif kind == "consent":
            deps.consents.add(node["consent"])
        elif kind == "cluster":
            deps.scores.add("cluster")
        elif kind == "propensity":
            deps.scores.add(node["propensity"])
        elif kind == "segment" and node["segment"] not in seen:
            target = definitions(node["segment"])
            if target is not None:
                visit(target, seen | {node["segment"]})

    visit(definition, frozenset())
    return deps


# --- Reference evaluator -------------------------------------------------------------------


@dataclass(frozen=True)
class EventFact:
    id: int
    name: str
    timestamp: dt.datetime
    properties: Mapping[str, Any]


@dataclass
class ProfileFacts:
    """Everything a definition can look at for one profile, loaded by segments.selectors."""

    id: int
    traits: Mapping[str, Any]
    computed: Mapping[str, Any]  # column name -> value (datetimes aware, revenue Decimal/float)
    events: list[EventFact] = field(default_factory=list)
    identifiers: set[str] = field(default_factory=set)
    consents: set[str] = field(default_factory=set)
    scores: Mapping[str, float] = field(default_factory=dict)


MISSING = object()


def json_type(value: Any) -> str:
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float | Decimal):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def lookup_path(data: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(data, Mapping) or key not in data:
            return MISSING
        data = data[key]
    return data


def duration(value: Mapping[str, int]) -> dt.timedelta:
    if "days" in value:
        return dt.timedelta(days=value["days"])
    return dt.timedelta(hours=value["hours"])


def day_start(date: dt.date) -> dt.datetime:
    return dt.datetime(date.year, date.month, date.day, tzinfo=dt.UTC)


def _same_type_equal(actual: Any, expected: Any) -> bool:
    kind = json_type(actual)
    if kind != json_type(expected):
        return False
    if kind == "number":
        return float(actual) == float(expected)
    return bool(actual == expected)


def value_matches(actual: Any, op: str, value: Any, now: dt.datetime) -> bool:
    """One JSON value (trait or event property) against (op, value)."""
    if op in ("neq", "not_in", "not_exists"):
        positive = {"neq": "eq", "not_in": "in", "not_exists": "exists"}[op]
        return not value_matches(actual, positive, value, now)
    kind = json_type(actual)
    if op == "exists":
        return kind not in ("missing", "null")
    if op == "eq":
        return _same_type_equal(actual, value)
    if op == "in":
        return any(_same_type_equal(actual, v) for v in value)
    if op in ("contains", "starts_with"):
        if kind != "string":
            return False
        text, needle = actual.upper(), value.upper()
        return needle in text if op == "contains" else text.startswith(needle)
    if op in ("gt", "gte", "lt", "lte", "between") and (op != "between" or _is_number(value[0])):
        if kind != "number":
            return False
        number = float(actual)
        if op == "between":
            return float(value[0]) <= number <= float(value[1])
        return _compare(number, op, float(value))
    # Date operators on strings that start with an ISO date.
    if kind != "string" or not ISO_DATE_PREFIX.match(actual):
        return False
    day = actual[:10]
    if op == "before":
        return day < value
    if op == "after":
        return day > value
    if op == "between":
        return value[0] <= day <= value[1]
    if op == "within_last":
        return (now - duration(value)).date().isoformat() <= day <= now.date().isoformat()
    raise ValueError(op)


def _compare(number: float, op: str, value: float) -> bool:
    return {
        "gt": number > value,
        "gte": number >= value,
        "lt": number < value,
        "lte": number <= value,
        "eq": number == value,
        "neq": number != value,
    }[op]


def datetime_matches(moment: dt.datetime | None, op: str, value: Any, now: dt.datetime) -> bool:
    """A datetime column (or first/last occurrence) against a date operator."""
    if op == "not_exists":
        return moment is None
    if moment is None:
        return False
    if op == "exists":
        return True
    if op == "before":
        return moment < day_start(dt.date.fromisoformat(value))
    if op == "after":
        return moment >= day_start(dt.date.fromisoformat(value) + dt.timedelta(days=1))
    if op == "between":
        start = day_start(dt.date.fromisoformat(value[0]))
        end = day_start(dt.date.fromisoformat(value[1]) + dt.timedelta(days=1))
        return start <= moment < end
    if op == "within_last":
        return now - duration(value) <= moment <= now
    raise ValueError(op)


def recency_reference(computed: Mapping[str, Any]) -> dt.datetime | None:
    return computed.get("last_order_at") or computed.get("last_seen")


def recency_matches(reference: dt.datetime | None, op: str, value: Any, now: dt.datetime) -> bool:
    """recency (days since reference) op value, as moment comparisons so that SQL agrees."""
    if op == "not_exists":
        return reference is None
    if reference is None:
        return False
    if op == "exists":
        return True
    if op == "between":
        low, high = value
        return now - dt.timedelta(days=high) <= reference <= now - dt.timedelta(days=low)
    cut = now - dt.timedelta(days=value)
    # recency > N  <=>  reference < now - N days
    return {
        "gt": reference < cut,
        "gte": reference <= cut,
        "lt": reference > cut,
        "lte": reference >= cut,
    }[op]


def window_bounds(
    window: Mapping[str, Any] | None, now: dt.datetime
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start, end) of an event window; None means open."""
    if not window:
        return None, None
    if "between" in window:
        start = day_start(dt.date.fromisoformat(window["between"][0]))
        end = day_start(dt.date.fromisoformat(window["between"][1]) + dt.timedelta(days=1))
        return start, end
    return now - duration(window), None


def _event_matches(
    event: EventFact, name: str, where: list[Mapping[str, Any]], now: dt.datetime
) -> bool:
    return event.name == name and all(
        value_matches(lookup_path(event.properties, f["property"]), f["op"], f.get("value"), now)
        for f in where
    )


def matching_events(
    node: Mapping[str, Any], facts: ProfileFacts, now: dt.datetime
) -> list[EventFact]:
    start, end = window_bounds(node.get("within"), now)
    return [
        event
        for event in facts.events
        if _event_matches(event, node["event"], node.get("where", []), now)
        and (start is None or event.timestamp >= start)
        and (end is None or event.timestamp < end)
    ]


def _followed(
    event: EventFact, follow: Mapping[str, Any], facts: ProfileFacts, now: dt.datetime
) -> bool:
    limit = event.timestamp + duration(follow["within"])
    return any(
        event.timestamp < other.timestamp <= limit
        and _event_matches(other, follow["event"], follow.get("where", []), now)
        for other in facts.events
    )


def evaluate_event(node: Mapping[str, Any], facts: ProfileFacts, now: dt.datetime) -> bool:
    events = matching_events(node, facts, now)
    for key, pick in (("first", min), ("last", max)):
        if key in node:
            moment = pick((e.timestamp for e in events), default=None)
            return datetime_matches(moment, node[key]["op"], node[key]["value"], now)
    follow = node.get("not_followed_by")
    if follow is not None:
        elapsed = now - duration(follow["within"])
        return any(e.timestamp <= elapsed and not _followed(e, follow, facts, now) for e in events)
    count = node.get("count", {"op": "gte", "value": 1})
    return _compare(len(events), count["op"], count["value"])


SegmentResolver = Callable[[int], Mapping[str, Any] | None]


def evaluate(
    node: Mapping[str, Any],
    facts: ProfileFacts,
    *,
    now: dt.datetime,
    segments: SegmentResolver = lambda _id: None,
) -> bool:
    """Whether the profile described by `facts` satisfies the (validated) definition `node`."""
    return explain(node, facts, now=now, segments=segments)["result"]


def explain(
    node: Mapping[str, Any],
    facts: ProfileFacts,
    *,
    now: dt.datetime,
    segments: SegmentResolver = lambda _id: None,
    _seen: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """The evaluation as a tree: {"text", "result", "detail", "children"} per node."""
    kind = node_kind(node)
    children: list[dict[str, Any]] = []
    detail = ""
    if kind in GROUP_KEYS:
        children = [explain(c, facts, now=now, segments=segments, _seen=_seen) for c in node[kind]]
        results = [c["result"] for c in children]
        result = (
            all(results) if kind == "all" else any(results) if kind == "any" else not any(results)
        )
    elif kind == "trait":
        actual = lookup_path(facts.traits, node["trait"])
        result = value_matches(actual, node["op"], node.get("value"), now)
        detail = "no such trait" if actual is MISSING else f"value: {_short(actual)}"
    elif kind == "event":
        result = evaluate_event(node, facts, now)
        matched = matching_events(node, facts, now)
        detail = f"{len(matched)} matching event(s)"
        if matched:
            detail += f", last at {max(e.timestamp for e in matched):%Y-%m-%d %H:%M} UTC"
    elif kind == "computed":
        name = node["computed"]
        if name == "recency":
            ref = recency_reference(facts.computed)
            result = recency_matches(ref, node["op"], node.get("value"), now)
            detail = (
                "never seen" if ref is None else f"{(now - ref).total_seconds() / 86400:.1f} days"
            )
        elif name in DATETIME_COMPUTED:
            moment = facts.computed.get(DATETIME_COMPUTED[name])
            result = datetime_matches(moment, node["op"], node.get("value"), now)
            detail = "not set" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"
        else:
            number = float(facts.computed.get(NUMERIC_COMPUTED[name]) or 0)
            result = value_matches(number, node["op"], node.get("value"), now)
            detail = f"value: {number:g}"
    elif kind == "consent":
        result = node["consent"] in facts.consents
        detail = "granted" if result else "not granted"
    elif kind == "has_identifier":
        result = node["has_identifier"] in facts.identifiers
        detail = "present" if result else "absent"
    elif kind == "segment":
        target = segments(node["segment"]) if node["segment"] not in _seen else None
        inner = (
            explain(target, facts, now=now, segments=segments, _seen=_seen | {node["segment"]})
            if target is not None
            else {"result": False}
        )
        if target is not None:
            children = [inner]
        result = inner["result"] == node.get("member", True)
        detail = "member" if inner["result"] else "not a member"
    elif kind == "cluster":
        actual = facts.scores.get("cluster")
        result = actual is not None and int(actual) == node["cluster"]
        detail = "no cluster" if actual is None else f"cluster {int(actual)}"
    elif kind == "propensity":
        score = facts.scores.get(node["propensity"])
        result = score is not None and value_matches(float(score), node["op"], node["value"], now)
        detail = "no score" if score is None else f"score {float(score):.2f}"
    else:  # pragma: no cover - the schema admits no other kind
        raise ValueError(kind)
    return {
        "text": describe_node(node),
        "result": bool(result),
        "detail": detail,
        "children": children,
    }


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- Plain words ---------------------------------------------------------------------------

OP_WORDS = {
    "eq": "is",
    "neq": "is not",
    "contains": "contains",
    "starts_with": "starts with",
    "in": "is one of",
    "not_in": "is none of",
    "exists": "is set",
    "not_exists": "is not set",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "between": "is between",
    "before": "is before",
    "after": "is after",
    "within_last": "is within the last",
}
COUNT_WORDS = {
    "eq": "exactly",
    "neq": "other than",
    "gt": "more than",
    "gte": "at least",
    "lt": "fewer than",
    "lte": "at most",
}
COMPUTED_WORDS = {
    "recency": "days since the last order (or visit)",
    "frequency": "number of orders",
    "monetary": "total spent",
    "lifetime_value": "lifetime value",
    "order_count": "number of orders",
    "revenue": "revenue",
    "event_count": "number of events",
    "session_count": "number of sessions",
    "last_seen": "last seen",
    "first_seen": "first seen",
    "first_order_at": "first order",
    "last_order_at": "last order",
}


def _words_value(op: str, value: Any) -> str:
    if op in ("exists", "not_exists"):
        return ""
    if op == "within_last":
        return _words_duration(value)
    if op == "between":
        return f"{_words_scalar(value[0])} and {_words_scalar(value[1])}"
    if isinstance(value, list):
        return ", ".join(_words_scalar(v) for v in value)
    return _words_scalar(value)


def _words_scalar(value: Any) -> str:
    if isinstance(value, str):
        return f"“{value}”"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _words_duration(value: Mapping[str, int]) -> str:
    unit, amount = next(iter(value.items()))
    unit = unit[:-1] if amount == 1 else unit
    return f"{amount} {unit}"


def _words_times(count: Mapping[str, Any]) -> str:
    n = count["value"]
    if count["op"] == "gte" and n == 1:
        return ""
    if (count["op"] == "eq" and n == 0) or (count["op"] == "lt" and n == 1):
        return " never"
    return f" {COUNT_WORDS[count['op']]} {n} time{'s' if n != 1 else ''}"


def _words_where(where: list[Mapping[str, Any]]) -> str:
    if not where:
        return ""
    parts = [
        f"{w['property']} {OP_WORDS[w['op']]} {_words_value(w['op'], w.get('value'))}".strip()
        for w in where
    ]
    return " where " + " and ".join(parts)


def describe_node(node: Mapping[str, Any]) -> str:
    """One condition (or group) in plain words."""
    kind = node_kind(node)
    if kind in GROUP_KEYS:
        joiner = {"all": " and ", "any": " or ", "none": "; "}[kind]
        inner = joiner.join(describe_node(c) for c in node[kind])
        if kind == "none":
            return f"match none of ({inner})"
        return f"({inner})" if len(node[kind]) > 1 else inner
    if kind == "trait":
        value = _words_value(node["op"], node.get("value"))
        return f"whose {node['trait']} {OP_WORDS[node['op']]} {value}".strip()
    if kind == "event":
        text = f"who did “{node['event']}”{_words_where(node.get('where', []))}"
        for key in ("first", "last"):
            if key in node:
                spec = node[key]
                verb = OP_WORDS[spec["op"]].removeprefix("is ")
                return f"{text}, {key} time {verb} {_words_value(spec['op'], spec['value'])}"
        text += _words_times(node.get("count", {"op": "gte", "value": 1}))
        window = node.get("within")
        if window:
            if "between" in window:
                text += f" between {window['between'][0]} and {window['between'][1]}"
            else:
                text += f" in the last {_words_duration(window)}"
        follow = node.get("not_followed_by")
        if follow:
            text += (
                f" and not “{follow['event']}”{_words_where(follow.get('where', []))}"
                f" within {_words_duration(follow['within'])} after"
            )
        return text
    if kind == "computed":
        value = _words_value(node["op"], node.get("value"))
        suffix = (
            " days"
            if node["computed"] == "recency" and node["op"] not in ("exists", "not_exists")
            else ""
        )
        words = COMPUTED_WORDS[node["computed"]]
        return f"whose {words} {OP_WORDS[node['op']]} {value}{suffix}".strip()
    if kind == "consent":
        return f"who granted consent to {node['consent'].replace('_', ' ')}"
    if kind == "has_identifier":
        return f"who have a known {node['has_identifier'].replace('_', ' ')}"
    if kind == "segment":
        return (
            f"who {'are' if node.get('member', True) else 'are not'} in segment #{node['segment']}"
        )
    if kind == "cluster":
        return f"who belong to cluster {node['cluster']}"
    if kind == "propensity":
        words = {"purchase_30d": "likelihood to buy in 30 days", "churn": "likelihood to churn"}
        value = _words_value(node["op"], node["value"])
        return f"whose {words[node['propensity']]} {OP_WORDS[node['op']]} {value}"
    raise ValueError(kind)


def describe(definition: Mapping[str, Any]) -> str:
    text = describe_node(definition)
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return f"People {text}" if not text.startswith("match") else f"People who {text}"
