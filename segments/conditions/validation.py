"""Validation of a definition: the JSON Schema first (shape, allowed keys, safe names), then
the semantic checks (operator fits the kind and the value's type, dates parse, ranges are
ordered). Every error carries the JSON pointer of the node at fault."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from access.parsers import unstorable
from profiles.features import DATETIME_FEATURES as DATETIME_COMPUTED
from profiles.features import NUMERIC_FEATURES as NUMERIC_COMPUTED
from segments.conditions.schema import (
    COLUMN_RANGES,
    DATE_OPS,
    DATE_PATTERN,
    EVENT_NAME_PATTERN,
    GROUP_KEYS,
    KINDS,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_NODES,
    NUMERIC_OPS,
    PATH_PATTERN,
    RECENCY_OPS,
    SCHEMA,
)
from segments.conditions.tree import json_pointer, node_kind
from segments.conditions.values import is_number, short_repr


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
        pointer = json_pointer(best.absolute_path)
        if pointer in seen:
            continue
        seen.add(pointer)
        message = best.message
        if len(message) > 300:
            message = message[:300] + "…"
        if best.validator == "pattern":
            if best.schema.get("pattern") == PATH_PATTERN:
                message = (
                    f"{short_repr(best.instance)} is not a valid path: dot-separated names of "
                    "letters, digits and _ (no __), at most 5 levels"
                )
            elif best.schema.get("pattern") == EVENT_NAME_PATTERN:
                message = "event names are 1 to 255 printable characters"
            elif best.schema.get("pattern") == DATE_PATTERN:
                message = f"{short_repr(best.instance)} is not a date YYYY-MM-DD"
            else:
                message = (
                    f"{short_repr(best.instance)} is not a valid name: "
                    "lower-case letters, digits, _"
                )
        elif best.validator == "oneOf" and best.schema is _node_schema():
            message = "a condition needs exactly one of: " + ", ".join(KINDS)
        elif best.validator == "oneOf" and pointer.endswith("/value"):
            message = (
                "value must be a string, number, boolean, a list of those, "
                'or {"days": N} / {"hours": N}'
            )
        found.append(ConditionError(pointer, message))
    return found


# Integers a JSON reader in any language (JavaScript: 2**53) and a 64-bit database column read
# exactly; larger ones overflow SQLite's INTEGER and lose digits in browsers.
MAX_SAFE_INTEGER = 2**53


def _scalar_errors(value: Any, path: list[Any]) -> list[ConditionError]:
    """Numbers and strings no database or JSON reader holds alike, wherever they are. The
    offending text is never quoted back: a lone surrogate cannot even be rendered."""
    if isinstance(value, dict):
        errors = []
        for key, item in value.items():
            # Definitions reach here from forms too, not only through the strict JSON parser.
            problem = unstorable(key) if isinstance(key, str) else None
            if problem:
                errors.append(ConditionError(json_pointer(path), f"a field name: {problem}"))
            else:
                errors += _scalar_errors(item, [*path, key])
        return errors
    if isinstance(value, list):
        return [e for i, item in enumerate(value) for e in _scalar_errors(item, [*path, i])]
    problem = None
    if isinstance(value, str):
        problem = unstorable(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_SAFE_INTEGER:
            problem = "integers are at most 2**53 (9007199254740992) either side of 0"
    elif isinstance(value, float) and not math.isfinite(value):
        problem = "numbers must be finite"
    return [ConditionError(json_pointer(path), problem)] if problem else []


def _parse_date(value: Any) -> dt.date | None:
    """A date YYYY-MM-DD before the year 7999: from 8000 on years are reserved (see
    segments.services.realtime.SENTINEL_NOW), and a condition may compile to the day after its
    date."""
    if not isinstance(value, str) or not re.match(DATE_PATTERN, value):
        return None
    try:
        date = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return date if date.year < 7999 else None


def _check_value(op: str, value: Any, has_value: bool, *, numeric_only: bool = False) -> str | None:
    """The semantic check of one (op, value) pair; returns the problem or None."""
    if op in ("exists", "not_exists"):
        return "exists/not_exists take no value" if has_value else None
    if not has_value:
        return f"operator {op!r} needs a value"
    if op in ("eq", "neq"):
        ok = (
            is_number(value)
            if numeric_only
            else (isinstance(value, str | bool) or is_number(value))
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
        if not all(isinstance(v, str | bool) or is_number(v) for v in value):
            return f"{op!r} needs a list of strings, numbers or booleans"
        return None
    if op in ("gt", "gte", "lt", "lte"):
        return None if is_number(value) else f"{op!r} needs a number"
    if op == "between":
        if isinstance(value, list) and len(value) == 2:
            if all(is_number(v) for v in value):
                return (
                    None if value[0] <= value[1] else "between needs [low, high] with low <= high"
                )
            if not numeric_only:
                low, high = (_parse_date(v) for v in value)
                if low is not None and high is not None:
                    return None if low <= high else "between needs [from, to] with from <= to"
        return (
            "between needs [low, high] (two numbers"
            + ("" if numeric_only else " or two dates YYYY-MM-DD before 7999")
            + ")"
        )
    if op in ("before", "after"):
        return None if _parse_date(value) else f"{op!r} needs a date YYYY-MM-DD before 7999"
    if op == "within_last":
        if isinstance(value, dict) and len(value) == 1 and set(value) <= {"days", "hours"}:
            amount = next(iter(value.values()))
            if isinstance(amount, int) and not isinstance(amount, bool) and amount >= 0:
                return None
        return 'within_last needs {"days": N} or {"hours": N}'
    return f"unknown operator {op!r}"


def validate(definition: Any, *, segment_exists: Callable[[int], bool] | None = None) -> None:
    """Raise InvalidDefinition listing every problem (with its JSON pointer), or return."""
    errors = _scalar_errors(definition, []) or _schema_errors(definition)
    if errors:
        raise InvalidDefinition(errors)
    errors = []
    count = 0

    def check(node: Mapping[str, Any], path: list[Any], depth: int) -> None:
        nonlocal count
        count += 1
        here = json_pointer(path)
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
            and not all(is_number(v) for v in item["value"])
        ):
            problem = "between on an event property needs two numbers"
        if problem:
            errors.append(ConditionError(json_pointer([*path, i]), problem))


def _check_event(node: Mapping[str, Any], path: list[Any], errors: list[ConditionError]) -> None:
    here = json_pointer(path)
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
            problem = "between on an occurrence needs two dates YYYY-MM-DD before 7999"
        if problem:
            errors.append(ConditionError(json_pointer([*path, occurrence[0]]), problem))
    window = node.get("within")
    if window and "between" in window:
        start, end = (_parse_date(v) for v in window["between"])
        if start is None or end is None or start > end:
            errors.append(
                ConditionError(
                    json_pointer([*path, "within"]), "between needs two valid dates, from <= to"
                )
            )
    follow = node.get("not_followed_by")
    if follow is not None:
        if "count" in node:
            errors.append(ConditionError(here, "not_followed_by cannot be combined with count"))
        _check_filters(follow.get("where", []), [*path, "not_followed_by", "where"], errors)


def _check_computed(node: Mapping[str, Any], here: str, errors: list[ConditionError]) -> None:
    name, op = node["computed"], node["op"]
    allowed: tuple[str, ...]
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
        problem = "between on a date needs two dates YYYY-MM-DD before 7999"
    if problem is None and name not in DATETIME_COMPUTED and op not in ("exists", "not_exists"):
        # A bound the column cannot hold would make the database (or datetime) refuse the query.
        low, high = COLUMN_RANGES[NUMERIC_COMPUTED[name]] if name != "recency" else (0, MAX_DAYS)
        bounds = node["value"] if op == "between" else [node["value"]]
        if not all(low <= bound <= high for bound in bounds):
            unit = " days" if name == "recency" else ""
            problem = f"{name} is between {low} and {high}{unit}: use a value in that range"
    if problem:
        errors.append(ConditionError(here, problem))
