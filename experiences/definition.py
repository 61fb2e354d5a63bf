"""The experience language, a pure core (STYLE rule 11: no ORM): what an experience may hold
(page-context conditions, variants, an audience in the segment language), the checks on write,
and the decisions' pure parts: audience and page matching, the arm a person falls into, and
content rendered from Liquid.

Audience. A condition tree in the segment language (segments.conditions), evaluated by its
reference evaluator against the profile's traits and computed columns; a `segment` node reads
the profile's precomputed membership (the segments stage keeps it), never the segment's
definition. Conditions that need a profile's event history, scores, consents or identifiers
(`event`, `cluster`, `propensity`, `consent`, `has_identifier`) are refused in an audience:
put them in a segment and target the segment, so that a decision never reads event history.

Page context. A list of {"field", "op", "value"} that must all hold, on what the page sends
with the request: `path`, `referrer`, `utm_campaign`, `device`, `country`. Operators and
their semantics are the segment language's (`eq`, `contains`, `starts_with`, `in`, ..., case
rules included); a field the page did not send is missing (only `neq`, `not_in` and
`not_exists` hold for it).

Content. JSON whose strings are Liquid templates (campaigns.messages: sandboxed; values
printed from the profile are HTML-escaped). A template sees `profile.id`,
`profile.traits` (through the PII gate: personal traits arrive masked), `profile.computed`
and `page.<field>`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from typing import Any

import jsonschema

from campaigns import messages, stats
from segments import conditions

PAGE_FIELDS = ("path", "referrer", "utm_campaign", "device", "country")
PAGE_OPS = ("eq", "neq", "contains", "starts_with", "in", "not_in", "exists", "not_exists")
ALLOCATIONS = ("split", "bandit", "single")
AUDIENCE_KINDS = frozenset({"all", "any", "none", "trait", "computed", "segment"})
MAX_VARIANTS = 10
MAX_PAGE_CONDITIONS = 20
MAX_PAGE_VALUE = 2000

PAGE_SCHEMA: dict[str, Any] = {
    "type": "array",
    "maxItems": MAX_PAGE_CONDITIONS,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["field", "op"],
        "properties": {
            "field": {"enum": list(PAGE_FIELDS)},
            "op": {"enum": list(PAGE_OPS)},
            "value": {
                "oneOf": [
                    {"type": "string", "maxLength": MAX_PAGE_VALUE},
                    {
                        "type": "array",
                        "maxItems": 100,
                        "items": {"type": "string", "maxLength": MAX_PAGE_VALUE},
                    },
                ]
            },
        },
    },
}
VARIANTS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": MAX_VARIANTS,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "content"],
        "properties": {
            "name": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}\Z"},
            "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000},
            "content": {"type": "object"},
        },
    },
}

# What a content template sees when it is checked on save: every name exists, values empty.
SAMPLE_CONTEXT: dict[str, Any] = {
    "profile": {"id": 0, "traits": {}, "computed": {}},
    "page": dict.fromkeys(PAGE_FIELDS, ""),
}

Problems = dict[str, list[str]]


class InvalidExperience(ValueError):
    """Input an experience or placement cannot hold: `errors` maps each field to what is
    wrong with it (JSON pointers inside the field where there are several places)."""

    def __init__(self, errors: Problems) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))


def _where(error: jsonschema.ValidationError | jsonschema.SchemaError) -> str:
    pointer = "".join(f"/{part}" for part in error.absolute_path)
    return f"{pointer or '/'}: {error.message}"


def schema_problems(schema: Any) -> list[str]:
    """Why `schema` is no usable JSON Schema (Draft 2020-12)."""
    if not isinstance(schema, dict):
        return ["must be a JSON object (a JSON Schema)"]
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as error:
        return [_where(error)]
    return []


def content_problems(content: Any, schema: Mapping[str, Any]) -> list[str]:
    """Why `content` does not fit its placement's schema or holds a broken Liquid template."""
    if not isinstance(content, dict):
        return ["must be a JSON object"]
    validator = jsonschema.Draft202012Validator(schema)
    found = [_where(e) for e in sorted(validator.iter_errors(content), key=str)[:10]]
    for pointer, text in _strings(content, ""):
        problem = messages.template_problem(text, html=True)
        if problem:
            found.append(f"{pointer}: {problem}")
    return found


def _strings(value: Any, pointer: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(pointer or "/", value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _strings(v, f"{pointer}/{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _strings(v, f"{pointer}/{i}")]
    return []


def audience_problems(audience: Any, *, segment_exists: Callable[[int], bool]) -> list[str]:
    if audience is None:
        return []
    try:
        conditions.validate(audience, segment_exists=segment_exists)
    except conditions.InvalidDefinition as invalid:
        return [f"{e.pointer or '/'}: {e.message}" for e in invalid.errors]
    return [
        f"{pointer or '/'}: {conditions.node_kind(node)} conditions need more than the "
        "profile's traits; put them in a segment and target the segment"
        for pointer, node in conditions.walk_with_pointers(audience)
        if conditions.node_kind(node) not in AUDIENCE_KINDS
    ]


def _schema_list(value: Any, schema: Mapping[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [_where(e) for e in sorted(validator.iter_errors(value), key=str)[:10]]


def experience_problems(
    fields: Mapping[str, Any],
    *,
    content_schema: Mapping[str, Any],
    segment_exists: Callable[[int], bool],
) -> Problems:
    """Everything wrong with an experience's fields, by field (empty when it is usable)."""
    problems: Problems = {}

    def add(field: str, found: list[str]) -> None:
        if found:
            problems.setdefault(field, []).extend(found)

    add("audience", audience_problems(fields.get("audience"), segment_exists=segment_exists))
    add("page", _schema_list(fields.get("page", []), PAGE_SCHEMA))
    if "page" not in problems:
        for index, condition in enumerate(fields.get("page", [])):
            op, has_value = condition["op"], "value" in condition
            if op in ("exists", "not_exists") and has_value:
                add("page", [f"/{index}: {op} takes no value"])
            elif op in ("in", "not_in") and not isinstance(condition.get("value"), list):
                add("page", [f"/{index}: {op} needs a list of strings"])
            elif op not in ("exists", "not_exists", "in", "not_in") and not isinstance(
                condition.get("value"), str
            ):
                add("page", [f"/{index}: {op} needs a string value"])
    variants = fields.get("variants", [])
    add("variants", _schema_list(variants, VARIANTS_SCHEMA))
    if "variants" not in problems:
        names = [v["name"] for v in variants]
        if len(set(names)) != len(names):
            add("variants", ["variant names must be unique"])
        for index, variant in enumerate(variants):
            add(
                "variants",
                [
                    f"/{index}/content{p}"
                    for p in content_problems(variant["content"], content_schema)
                ],
            )
    allocation = fields.get("allocation", "split")
    if allocation not in ALLOCATIONS:
        add("allocation", [f"must be one of {', '.join(ALLOCATIONS)}"])
    elif allocation == "single" and "variants" not in problems and len(variants) != 1:
        add("allocation", ["a single allocation shows exactly one variant"])
    elif allocation == "bandit" and "variants" not in problems and len(variants) < 2:
        add("allocation", ["a bandit needs at least two variants"])
    holdout = fields.get("holdout_percent", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout < 100:
        add("holdout_percent", ["must be a number from 0 up to (not including) 100"])
    starts, ends = fields.get("starts_at"), fields.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        add("ends_at", ["must be after starts_at"])
    return problems


# --- decisions -------------------------------------------------------------------------------


def is_live(starts_at: dt.datetime | None, ends_at: dt.datetime | None, now: dt.datetime) -> bool:
    return (starts_at is None or starts_at <= now) and (ends_at is None or now < ends_at)


def page_matches(page_conditions: list[Mapping[str, Any]], page: Mapping[str, str]) -> bool:
    if not page_conditions:  # most experiences: checked for each on every decision
        return True
    now = dt.datetime.now(dt.UTC)  # page values are no dates; the evaluator wants a time
    return all(
        conditions.value_matches(
            page[c["field"]] if page.get(c["field"]) else conditions.MISSING,
            c["op"],
            c.get("value"),
            now,
        )
        for c in page_conditions
    )


def audience_matches(
    audience: Mapping[str, Any] | None,
    *,
    traits: Mapping[str, Any],
    computed: Mapping[str, Any],
    segment_ids: Collection[int],
    now: dt.datetime,
) -> bool:
    """Whether a profile with these traits, computed columns and segment memberships is in
    the audience (see the module). The segment language's semantics (segments.conditions'
    value functions; tests hold it equal to its reference evaluator) for the kinds an audience
    may hold, without the evaluator's explanation text: this runs for several experiences on
    every page view."""
    if audience is None:
        return True
    kind = conditions.node_kind(audience)
    if kind in conditions.GROUP_KEYS:
        found = (
            audience_matches(
                child, traits=traits, computed=computed, segment_ids=segment_ids, now=now
            )
            for child in audience[kind]
        )
        return all(found) if kind == "all" else any(found) if kind == "any" else not any(found)
    if kind == "segment":
        return (audience["segment"] in segment_ids) == audience.get("member", True)
    op, value = audience["op"], audience.get("value")
    if kind == "trait":
        return conditions.value_matches(
            conditions.lookup_path(traits, audience["trait"]), op, value, now
        )
    name = audience["computed"]  # the only other kind an audience admits (audience_problems)
    if name == "recency":
        return conditions.recency_matches(conditions.recency_reference(computed), op, value, now)
    if name in conditions.DATETIME_COMPUTED:
        return conditions.datetime_matches(
            computed.get(conditions.DATETIME_COMPUTED[name]), op, value, now
        )
    number = float(computed.get(conditions.NUMERIC_COMPUTED[name]) or 0)
    return conditions.value_matches(number, op, value, now)


def in_holdout(*, experience_id: int, person: int | str, percent: float) -> bool:
    return percent > 0 and stats.stable_unit("experience-holdout", experience_id, person) < (
        percent / 100
    )


def variant_pick(
    *,
    experience_id: int,
    person: int | str,
    variants: list[Mapping[str, Any]],
    allocation: str,
    bandit_shares: Mapping[str, float],
) -> str:
    """The variant a person falls into: a stable hash of (experience, person) into the
    variants' weights (split), the bandit's latest shares (equal until it has some), or the
    one variant (single). `person` is a profile id, or for a visitor without a profile the
    identifier they were asked about as "kind:value" (it never equals a profile id's text)."""
    names = [v["name"] for v in variants]
    if allocation == "single" or len(names) == 1:
        return names[0]
    if allocation == "bandit":
        shares = (
            [bandit_shares[name] for name in names]
            if set(bandit_shares) == set(names)
            else [1.0] * len(names)
        )
    else:
        shares = [float(v.get("weight", 1)) for v in variants]
    unit = stats.stable_unit("experience", experience_id, person)
    return names[int(stats.arms_pick([unit], stats.split_shares(shares))[0])]


def content_render(content: Any, context: Mapping[str, Any]) -> Any:
    """Content with every string rendered as an HTML Liquid template (sandboxed, escaped)."""
    if isinstance(content, str):
        return messages.render(content, context, html=True)
    if isinstance(content, dict):
        return {key: content_render(value, context) for key, value in content.items()}
    if isinstance(content, list):
        return [content_render(value, context) for value in content]
    return content
