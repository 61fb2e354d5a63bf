"""Validation of the identity settings' JSON fields (STYLE.md rule 12): JSON Schemas plus the
checks a schema cannot express (field kinds, regexes compile, thresholds ordered)."""

from __future__ import annotations

import re
from typing import Any

import jsonschema

from identity.matching import KINDS, fields_from_config
from identity.rules import blocked_value_compile

SETTINGS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "merge_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "review_threshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "fields": {
            "type": "array",
            "maxItems": 40,
            "uniqueItems": True,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "kind"],
                "properties": {
                    # Not only white space (as Python's str.strip() sees it).
                    "path": {"type": "string", "pattern": r"[^\s\x1c-\x1f\x85]", "maxLength": 100},
                    "kind": {"enum": list(KINDS)},
                },
            },
        },
        "kind_priority": {
            "type": "array",
            "maxItems": 30,
            "uniqueItems": True,
            "items": {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,31}\Z"},
        },
        "kind_limits": {
            "type": "object",
            "maxProperties": 30,
            "propertyNames": {"pattern": r"^[a-z][a-z0-9_]{0,31}\Z"},
            "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        "blocked_values": {
            "type": "array",
            "maxItems": 200,
            "items": {"type": "string", "minLength": 1, "maxLength": 200},
        },
        "trait_strategy": {"enum": ["recent", "survivor"]},
        "survivor_rule": {"enum": ["oldest", "most_events"]},
    },
}


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or (
        error.validator_value[0]
        if error.validator == "required" and isinstance(error.validator_value, list)
        else "settings"
    )


def settings_validate(values: dict[str, Any]) -> dict[str, Any]:
    """The settings, checked; raises ValueError(dict of field path → message)."""
    errors: dict[str, str] = {}
    validator = jsonschema.Draft202012Validator(SETTINGS_SCHEMA)
    for error in sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path)):
        errors.setdefault(_where(error), error.message)
    if not errors:
        if "fields" in values:
            try:
                fields_from_config(values["fields"])
            except ValueError as error:
                errors["fields"] = str(error)
        for position, value in enumerate(values.get("blocked_values", [])):
            try:
                blocked_value_compile(value)
            except re.error as error:
                errors[f"blocked_values.{position}"] = f"not a valid regular expression: {error}"
        merge = values.get("merge_threshold")
        review = values.get("review_threshold")
        if merge is not None and review is not None and review > merge:
            errors["review_threshold"] = "must not be above the merge threshold"
    if errors:
        raise ValueError(errors)
    return values
