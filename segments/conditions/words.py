"""A definition in plain words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from profiles.features import FEATURE_LABELS as COMPUTED_WORDS
from segments.conditions.schema import GROUP_KEYS
from segments.conditions.tree import node_kind

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
                op, value = node[key]["op"], node[key]["value"]
                if op == "within_last":
                    moment = f"in the last {_words_duration(value)}"
                elif op == "between":
                    moment = f"between {value[0]} and {value[1]}"
                else:
                    moment = f"{op} {value}"
                where = _words_where(node.get("where", []))
                return f"who {key} did “{node['event']}”{where} {moment}"
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
        model_words = {
            "purchase_30d": "likelihood to buy in 30 days",
            "churn": "likelihood to churn",
        }
        value = _words_value(node["op"], node["value"])
        return f"whose {model_words[node['propensity']]} {OP_WORDS[node['op']]} {value}"
    raise ValueError(kind)


def describe(definition: Mapping[str, Any]) -> str:
    text = describe_node(definition)
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return f"People {text}" if not text.startswith("match") else f"People who {text}"
