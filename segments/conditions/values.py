"""The value semantics shared by the reference evaluator and the compiler: JSON types,
paths, durations, and one value, datetime or recency against an operator."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from segments.conditions.schema import ISO_DATE_PREFIX

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


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
    if op in ("gt", "gte", "lt", "lte", "between") and (op != "between" or is_number(value[0])):
        if kind != "number":
            return False
        number = float(actual)
        if op == "between":
            return float(value[0]) <= number <= float(value[1])
        return compare(number, op, float(value))
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


def compare(number: float, op: str, value: float) -> bool:
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


def short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
