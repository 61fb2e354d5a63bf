"""A campaign definition: its JSON Schema, validation, walking its steps, and the clock rules of
waits and quiet hours. Pure Python (STYLE rule 11): no ORM; what it must look up (channels,
segments) is passed in.

    {"trigger": {"event": "Product Added", "where": [<property filters as in segments>]}
              | {"segment": 12, "on": "enter" | "exit"}
              | {"broadcast": {"segment": 12, "at": "2026-12-24T09:00:00Z"}},
     "entry": "once" | "every_time" | {"once_per": {"days": 7}},
     "goal": {"event": "Order Completed", "where": [...], "within": {"days": 3}},
     "frequency_cap": {"messages": 3, "days": 7},        # optional: overrides the global cap
     "steps": [{"wait": {"minutes": 60}},                # seconds | minutes | hours | days
               {"wait": {"until_hour": 9}},              # next 09:00 in the recipient's zone
               {"branch": {"if": <segment condition>, "then": [...], "else": [...]}},
               {"send": {"channel": 3, "message": {...}}},
               {"send": {"channel": 3, "allocation": "split" | "bandit",   # an experiment
                         "variants": [{"name": "A", "weight": 50, "message": {...}}, ...]}}],
     "control": {"percent": 10}}                          # optional: a control group

Variants are tested in one send step per campaign; each person's variant (or control) is
chosen once per campaign and kept (campaigns.services.experiments), so every send step of the
journey treats them alike.

The message of a send step depends on its channel's kind: email `{"subject", "html", "text"}`
(subject and at least one body), push `{"title", "body", "url", "data"}`, webhook any JSON
object (its strings are templates).
Every error carries the JSON pointer of the offending node, from the definition's root (which
is the API body's root: `/steps/2/branch/if/trait`).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.messages import template_problem
from segments import conditions
from segments.conditions import (
    EVENT_NAME_PATTERN,
    ConditionError,
    InvalidDefinition,
    json_pointer,
    validate,
)

MAX_STEPS = 100
MAX_BRANCH_DEPTH = 5
MAX_WAIT_DAYS = 365
DURATION_UNITS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}
# White space spelt out as Python's \s reads it (\x1c-\x1f and \x85 too): the API documents
# the pattern, and request generators read \s as JavaScript does.
EMAIL_PATTERN = r"^[^@\s\x1c-\x1f\x85<>\"]{1,64}@[^@\s\x1c-\x1f\x85<>\"]{1,253}\Z"
MAX_VARIANTS = 10
VARIANT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}\Z"

# A step path locates a step: [2, "then", 0] is steps[2].branch.then[0].
StepPath = list[int | str]


class InvalidCampaign(ValueError):
    def __init__(self, errors: list[ConditionError]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e.pointer or '/'}: {e.message}" for e in errors))


def _duration(max_days: int) -> dict[str, Any]:
    return {
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            unit: {"type": "integer", "minimum": 0, "maximum": max_days * 86400 // seconds}
            for unit, seconds in DURATION_UNITS.items()
        },
        "additionalProperties": False,
    }


_event_name = {"type": "string", "pattern": EVENT_NAME_PATTERN}
# The filters' own shape is the segment language's; checked by its validator (see below).
_where = {"type": "array"}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://cdp.example/schemas/campaign-definition/v1.json",
    "title": "Campaign definition (version 1)",
    "type": "object",
    "required": ["trigger", "steps"],
    "additionalProperties": False,
    "properties": {
        "trigger": {
            "type": "object",
            "oneOf": [
                {
                    "properties": {"event": _event_name, "where": _where},
                    "required": ["event"],
                    "additionalProperties": False,
                },
                {
                    "properties": {
                        "segment": {"type": "integer", "minimum": 1},
                        "on": {"enum": ["enter", "exit"]},
                    },
                    "required": ["segment"],
                    "additionalProperties": False,
                },
                {
                    "properties": {
                        "broadcast": {
                            "type": "object",
                            "properties": {
                                "segment": {"type": "integer", "minimum": 1},
                                "at": {"type": "string", "maxLength": 40},
                            },
                            "required": ["segment", "at"],
                            "additionalProperties": False,
                        }
                    },
                    "required": ["broadcast"],
                    "additionalProperties": False,
                },
            ],
        },
        "entry": {
            "oneOf": [
                {"enum": ["once", "every_time"]},
                {
                    "type": "object",
                    "properties": {"once_per": _duration(MAX_WAIT_DAYS * 10)},
                    "required": ["once_per"],
                    "additionalProperties": False,
                },
            ]
        },
        "goal": {
            "type": "object",
            "properties": {
                "event": _event_name,
                "where": _where,
                "within": _duration(MAX_WAIT_DAYS),
            },
            "required": ["event", "within"],
            "additionalProperties": False,
        },
        "frequency_cap": {
            "type": "object",
            "properties": {
                "messages": {"type": "integer", "minimum": 0, "maximum": 1000},
                "days": {"type": "integer", "minimum": 1, "maximum": MAX_WAIT_DAYS},
            },
            "required": ["messages", "days"],
            "additionalProperties": False,
        },
        # A share of the people who enter is kept as a control group: they walk the journey
        # but are never sent anything (marketing campaigns only).
        "control": {
            "type": "object",
            "properties": {"percent": {"type": "number", "exclusiveMinimum": 0, "maximum": 90}},
            "required": ["percent"],
            "additionalProperties": False,
        },
        "steps": {"$ref": "#/$defs/steps"},
    },
    "$defs": {
        "steps": {"type": "array", "maxItems": MAX_STEPS, "items": {"$ref": "#/$defs/step"}},
        "step": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "properties": {
                "wait": {
                    "oneOf": [
                        _duration(MAX_WAIT_DAYS),
                        {
                            "type": "object",
                            "properties": {
                                "until_hour": {"type": "integer", "minimum": 0, "maximum": 23}
                            },
                            "required": ["until_hour"],
                            "additionalProperties": False,
                        },
                    ]
                },
                "branch": {
                    "type": "object",
                    "properties": {
                        "if": {"type": "object"},
                        "then": {"$ref": "#/$defs/steps"},
                        "else": {"$ref": "#/$defs/steps"},
                    },
                    "required": ["if"],
                    "additionalProperties": False,
                },
                "send": {
                    "type": "object",
                    "properties": {
                        "channel": {"type": "integer", "minimum": 1},
                        "message": {"type": "object"},
                        # An experiment: the variants' messages instead of one `message`.
                        "allocation": {"enum": ["split", "bandit"]},
                        "variants": {
                            "type": "array",
                            "minItems": 2,
                            "maxItems": MAX_VARIANTS,
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string", "pattern": VARIANT_NAME_PATTERN},
                                    "weight": {"type": "number", "minimum": 0, "maximum": 1000},
                                    "message": {"type": "object"},
                                },
                                "required": ["name", "message"],
                                "additionalProperties": False,
                            },
                        },
                    },
                    "required": ["channel"],
                    "additionalProperties": False,
                },
            },
            "additionalProperties": False,
        },
    },
}

# What a send step's message holds, per channel kind.
MESSAGE_SCHEMAS: dict[str, dict[str, Any]] = {
    "email": {
        "type": "object",
        "properties": {
            "subject": {"type": "string", "minLength": 1, "maxLength": 998},
            "html": {"type": "string", "maxLength": 500_000},
            "text": {"type": "string", "maxLength": 500_000},
        },
        "required": ["subject"],
        "anyOf": [{"required": ["html"]}, {"required": ["text"]}],
        "additionalProperties": False,
    },
    "webhook": {"type": "object", "maxProperties": 200},
    "push": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 200},
            "body": {"type": "string", "minLength": 1, "maxLength": 2000},
            "url": {"type": "string", "maxLength": 2000},
            "data": {
                "type": "object",
                "maxProperties": 50,
                "additionalProperties": {"type": "string", "maxLength": 1000},
            },
        },
        "required": ["title", "body"],
        "additionalProperties": False,
    },
}
# A browser notification carries the same title, body, link and data.
MESSAGE_SCHEMAS["web_push"] = MESSAGE_SCHEMAS["push"]

# What a channel's config holds, per kind. No secret goes in here (see models.Channel).
CHANNEL_SCHEMAS: dict[str, dict[str, Any]] = {
    "email": {
        "type": "object",
        "properties": {
            "from": {"type": "string", "pattern": EMAIL_PATTERN},
            "from_name": {"type": "string", "maxLength": 200, "pattern": r"^[^\r\n<>\"]*\Z"},
            "reply_to": {"type": "string", "pattern": EMAIL_PATTERN},
        },
        "required": ["from"],
        "additionalProperties": False,
    },
    # Mobile push: a provider webhook taking FCM HTTP v1's message shape.
    "push": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://", "maxLength": 2000},
        },
        "required": ["url"],
        "additionalProperties": False,
    },
    # Browser Web Push: to each PushSubscription of the person, through their push service.
    "web_push": {
        "type": "object",
        "properties": {
            # How long the push service keeps a message for an offline browser (seconds).
            "ttl": {"type": "integer", "minimum": 0, "maximum": 2419200},
        },
        "additionalProperties": False,
    },
    "webhook": {
        "type": "object",
        "properties": {
            "url": {"type": "string", "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://", "maxLength": 2000},
            # The consent purpose a marketing send through this endpoint needs.
            "purpose": {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,63}\Z"},
        },
        "required": ["url"],
        "additionalProperties": False,
    },
}


_validators: dict[str, Any] = {}
_ONE_OF_WORDS = {
    "wait": 'a wait is {"seconds" | "minutes" | "hours" | "days": N} or {"until_hour": H}',
    "entry": 'entry is "once", "every_time" or {"once_per": {"days": N}}',
}


def _schema_errors(
    instance: Any, schema: dict[str, Any], prefix: list[Any]
) -> list[ConditionError]:
    from jsonschema import Draft202012Validator

    key = schema.get("$id") or repr(sorted(schema))
    validator = _validators.get(key)
    if validator is None or validator.schema is not schema:
        validator = _validators[key] = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: -len(e.absolute_path))
    if not errors:
        return []
    deepest = len(errors[0].absolute_path)
    found: list[ConditionError] = []
    for error in errors:
        if len(error.absolute_path) != deepest:
            break
        message = error.message if len(error.message) <= 300 else error.message[:300] + "…"
        if error.validator == "oneOf" and error.schema is SCHEMA["properties"]["trigger"]:
            message = 'a trigger is {"event": ...}, {"segment": ...} or {"broadcast": ...}'
        elif error.validator == "oneOf" and error.absolute_path:
            message = _ONE_OF_WORDS.get(str(error.absolute_path[-1]), message)
        elif error.validator == "anyOf" and error.schema is MESSAGE_SCHEMAS["email"]:
            message = "an email needs an HTML part, a text part or both"
        elif error.validator in ("minProperties", "maxProperties") and "wait" in error.schema.get(
            "properties", {}
        ):
            message = "a step is exactly one of: wait, branch, send"
        pointer = json_pointer([*prefix, *error.absolute_path])
        if all(f.pointer != pointer for f in found):
            found.append(ConditionError(pointer, message))
    return found


def _prefixed(error: InvalidDefinition, prefix: list[Any]) -> list[ConditionError]:
    base = json_pointer(prefix)
    return [ConditionError(base + e.pointer, e.message) for e in error.errors]


def _where_errors(node: Mapping[str, Any], prefix: list[Any]) -> list[ConditionError]:
    """`where` filters in the segment language, checked by its own validator."""
    if not node.get("where"):
        return []
    try:
        validate({"event": node["event"], "where": node["where"]})
    except InvalidDefinition as error:
        return _prefixed(error, prefix)
    return []


def definition_validate(
    definition: Any,
    *,
    channel_kind: Callable[[int], str | None],
    segment_exists: Callable[[int], bool],
) -> None:
    """Raise InvalidCampaign listing every problem with its JSON pointer, or return."""
    errors = _schema_errors(definition, SCHEMA, [])
    if errors:
        raise InvalidCampaign(errors)
    trigger = definition["trigger"]
    if "event" in trigger:
        errors += _where_errors(trigger, ["trigger"])
    else:
        segment = trigger["segment"] if "segment" in trigger else trigger["broadcast"]["segment"]
        where = ["trigger", "segment"] if "segment" in trigger else ["trigger", "broadcast"]
        if not segment_exists(segment):
            errors.append(ConditionError(json_pointer(where), f"segment {segment} does not exist"))
    if "broadcast" in trigger and broadcast_time(definition) is None:
        errors.append(
            ConditionError(
                "/trigger/broadcast/at", "at must be an ISO date and time with an offset"
            )
        )
    if "goal" in definition:
        errors += _where_errors(definition["goal"], ["goal"])
    count = 0
    experiment: list[Any] | None = None
    for path, step in steps_walk(definition["steps"]):
        count += 1
        here = ["steps", *_pointer_parts(path)]
        if len(path) > 1 + 2 * MAX_BRANCH_DEPTH:
            errors.append(
                ConditionError(json_pointer(here), f"branches nest at most {MAX_BRANCH_DEPTH} deep")
            )
        elif "branch" in step:
            try:
                validate(step["branch"]["if"], segment_exists=segment_exists)
            except InvalidDefinition as error:
                errors += _prefixed(error, [*here, "branch", "if"])
        elif "send" in step:
            errors += _send_errors(step["send"], here, channel_kind)
            if "variants" in step["send"]:
                if experiment is not None:
                    errors.append(
                        ConditionError(
                            json_pointer([*here, "send", "variants"]),
                            "variants are tested in one send step per campaign; "
                            f"{json_pointer(experiment)} has them already",
                        )
                    )
                experiment = experiment or here
    if count > MAX_STEPS:
        errors.append(ConditionError("/steps", f"a journey holds at most {MAX_STEPS} steps"))
    if errors:
        raise InvalidCampaign(errors)


def _send_errors(
    send: Mapping[str, Any], here: list[Any], channel_kind: Callable[[int], str | None]
) -> list[ConditionError]:
    kind = channel_kind(send["channel"])
    if kind is None:
        return [
            ConditionError(
                json_pointer([*here, "send", "channel"]),
                f"channel {send['channel']} does not exist",
            )
        ]
    at = [*here, "send"]
    if ("message" in send) == ("variants" in send):
        return [ConditionError(json_pointer(at), "a send step has a message or variants")]
    if "message" in send:
        if "allocation" in send:
            return [
                ConditionError(
                    json_pointer([*at, "allocation"]), "allocation is for a step with variants"
                )
            ]
        return _message_errors(kind, send["message"], [*at, "message"])
    errors: list[ConditionError] = []
    names: set[str] = set()
    for index, variant in enumerate(send["variants"]):
        if variant["name"] in names:
            errors.append(
                ConditionError(
                    json_pointer([*at, "variants", index, "name"]),
                    f"another variant is named {variant['name']}",
                )
            )
        names.add(variant["name"])
        errors += _message_errors(kind, variant["message"], [*at, "variants", index, "message"])
    if send.get("allocation", "split") == "split" and not sum(variant_weights(send)):
        errors.append(
            ConditionError(json_pointer([*at, "variants"]), "a split needs a weight above 0")
        )
    return errors


def _message_errors(kind: str, message: Any, at: list[Any]) -> list[ConditionError]:
    errors = _schema_errors(message, MESSAGE_SCHEMAS[kind], at)
    if errors:
        return errors
    for key, template, html in message_templates(kind, message):
        problem = template_problem(template, html=html)
        if problem:
            errors.append(ConditionError(json_pointer([*at, *key]), problem))
    return errors


def occurrence_matches(
    node: Mapping[str, Any],
    name: str,
    timestamp: dt.datetime,
    properties: Any,
    now: dt.datetime,
) -> bool:
    """Whether an event (name, time, properties) is the one a trigger or goal node names: the
    segment language's own matching of the name and `where` filters."""
    if name != node["event"]:
        return False
    if not node.get("where"):
        return True
    fact = conditions.EventFact(
        0, name, timestamp, properties if isinstance(properties, dict) else {}
    )
    facts = conditions.ProfileFacts(id=0, traits={}, computed={}, events=[fact])
    query = {"event": node["event"], "where": node["where"]}
    return bool(conditions.matching_events(query, facts, now))


# --- experiments -----------------------------------------------------------------------------


def variant_weights(send: Mapping[str, Any]) -> list[float]:
    """A split's weights, in the variants' order (a variant without one weighs 1)."""
    return [float(variant.get("weight", 1)) for variant in send.get("variants", [])]


def experiment_step(steps: Sequence[Mapping[str, Any]]) -> tuple[str, Mapping[str, Any]] | None:
    """The pointer and `send` of the one step that tests variants, or None."""
    for path, step in steps_walk(steps):
        if "send" in step and "variants" in step["send"]:
            return step_pointer(path), step["send"]
    return None


def send_message_at(send: Mapping[str, Any], variant: str) -> tuple[str, Mapping[str, Any]]:
    """The message a send step sends to someone in `variant` (the first variant's when the
    step has variants and `variant` is none of them, as in a preview), and its JSON pointer
    inside the `send`: "/message" or "/variants/1/message"."""
    if "message" in send:
        return "/message", send["message"]
    for index, candidate in enumerate(send["variants"]):
        if candidate["name"] == variant:
            return f"/variants/{index}/message", candidate["message"]
    return "/variants/0/message", send["variants"][0]["message"]


def send_message(send: Mapping[str, Any], variant: str) -> Mapping[str, Any]:
    return send_message_at(send, variant)[1]


def message_problems(kind: str, message: Any, *, at: str) -> list[ConditionError]:
    """What a save would find wrong with one message for a channel of `kind` (its shape and
    its templates), with pointers under `at`, the message's JSON pointer: a message edited
    but not saved is checked so before a test send."""
    return _message_errors(kind, message, at.split("/")[1:])


def message_templates(
    kind: str, message: Mapping[str, Any]
) -> Iterator[tuple[list[Any], str, bool]]:
    """(path inside the message, template text, is HTML) for every template of a message."""
    if kind == "email":
        for key in ("subject", "html", "text"):
            if key in message:
                yield [key], message[key], key == "html"
        return

    def strings(value: Any, path: list[Any]) -> Iterator[tuple[list[Any], str, bool]]:
        if isinstance(value, str):
            yield path, value, False
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from strings(item, [*path, key])
        elif isinstance(value, list):
            for index, item in enumerate(value):
                yield from strings(item, [*path, index])

    yield from strings(message, [])


def channel_config_errors(kind: str, config: Any) -> list[ConditionError]:
    """Problems of a channel's config (pointers under /config), or []."""
    if kind not in CHANNEL_SCHEMAS:
        return [ConditionError("/kind", f"{kind} channels are not available yet")]
    return _schema_errors(config, CHANNEL_SCHEMAS[kind], ["config"])


def broadcast_time(definition: Mapping[str, Any]) -> dt.datetime | None:
    """When a broadcast goes out (aware), or None when `at` is not a time with an offset."""
    raw = definition["trigger"]["broadcast"]["at"]
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


# --- steps -----------------------------------------------------------------------------------


def _pointer_parts(path: Sequence[int | str]) -> list[Any]:
    """[2, "then", 0] -> [2, "branch", "then", 0] (the keys in the JSON)."""
    parts: list[Any] = [path[0]]
    for i in range(1, len(path), 2):
        parts += ["branch", path[i], path[i + 1]]
    return parts


def step_pointer(path: Sequence[int | str]) -> str:
    """The JSON pointer of a step: [2, "then", 0] -> "/steps/2/branch/then/0"."""
    return json_pointer(["steps", *_pointer_parts(path)])


def pointer_path(pointer: str) -> StepPath:
    """The inverse of `step_pointer`: "/steps/2/branch/then/0" -> [2, "then", 0]."""
    parts = pointer.split("/")[2:]
    path: StepPath = [int(parts[0])]
    for i in range(1, len(parts), 3):
        path += [parts[i + 1], int(parts[i + 2])]
    return path


def steps_walk(
    steps: Sequence[Mapping[str, Any]], path: tuple[int | str, ...] = ()
) -> Iterator[tuple[StepPath, Mapping[str, Any]]]:
    """(path, step) for every step, depth first."""
    for index, step in enumerate(steps):
        here = [*path, index]
        yield here, step
        if "branch" in step:
            for arm in ("then", "else"):
                yield from steps_walk(step["branch"].get(arm, []), (*here, arm))


def _steps_list(steps: Sequence[Mapping[str, Any]], path: Sequence[int | str]) -> Sequence[Any]:
    """The list that holds the step at `path`."""
    current = steps
    for i in range(0, len(path) - 1, 2):
        current = current[int(path[i])]["branch"].get(str(path[i + 1]), [])
    return current


def step_at(steps: Sequence[Mapping[str, Any]], path: Sequence[int | str]) -> Mapping[str, Any]:
    return _steps_list(steps, path)[int(path[-1])]


def path_settle(steps: Sequence[Mapping[str, Any]], path: StepPath) -> StepPath | None:
    """The step to run at `path`, or after it when `path` ran off the end of its list (the
    step after the branch that holds it); None at the end of the journey."""
    while int(path[-1]) >= len(_steps_list(steps, path)):
        if len(path) == 1:
            return None
        path = [*path[:-3], int(path[-3]) + 1]
    return path


def path_next(steps: Sequence[Mapping[str, Any]], path: StepPath) -> StepPath | None:
    return path_settle(steps, [*path[:-1], int(path[-1]) + 1])


def path_into(steps: Sequence[Mapping[str, Any]], path: StepPath, arm: str) -> StepPath | None:
    """The first step of a branch's arm (or what follows the branch when the arm is empty)."""
    return path_settle(steps, [*path, arm, 0])


# --- time ------------------------------------------------------------------------------------


def duration(spec: Mapping[str, int]) -> dt.timedelta:
    ((unit, amount),) = spec.items()
    return dt.timedelta(seconds=amount * DURATION_UNITS[unit])


def zone(name: Any, default: str) -> ZoneInfo:
    """The recipient's zone from `context.timezone`, or the workspace's when unknown."""
    if isinstance(name, str) and 0 < len(name) < 64:
        try:
            return ZoneInfo(name)
        except (ValueError, OSError, KeyError):
            pass
    return ZoneInfo(default)


def recipient_zone(context: Any, default: str) -> ZoneInfo:
    """The zone of a profile with this `context` (its `timezone`), or `default`."""
    return zone(context.get("timezone") if isinstance(context, dict) else None, default)


def next_local_hour(now: dt.datetime, hour: int, tz: ZoneInfo) -> dt.datetime:
    """The first moment after `now` when the clock in `tz` reads hour:00."""
    local = now.astimezone(tz)
    candidate = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if candidate <= local:
        candidate = (candidate.replace(tzinfo=None) + dt.timedelta(days=1)).replace(tzinfo=tz)
    return candidate.astimezone(dt.UTC)


def wait_until(spec: Mapping[str, int], now: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    if "until_hour" in spec:
        return next_local_hour(now, spec["until_hour"], tz)
    return now + duration(spec)


def quiet_until(
    now: dt.datetime, tz: ZoneInfo, quiet_hours: Sequence[int] | None
) -> dt.datetime | None:
    """When quiet hours (start, end: local hours, e.g. (21, 8) overnight) end, if `now` is
    inside them in `tz`; None when sending now is fine."""
    if quiet_hours is None:
        return None
    start, end = quiet_hours
    hour = now.astimezone(tz).hour
    inside = (start <= hour or hour < end) if start > end else (start <= hour < end)
    return next_local_hour(now, end, tz) if inside else None


# --- editing steps (the visual editor's operations) -------------------------------------------


_STEPS_POINTER = re.compile(r"/steps(?:/\d+/branch/(?:then|else))*(?:/\d+)?\Z")


def _location(pointer: str) -> StepPath:
    """A step's or a list's path from its JSON pointer: "/steps/2/branch/then/0" ->
    [2, "then", 0], "/steps/2/branch/then" -> [2, "then"], "/steps" -> []."""
    if not _STEPS_POINTER.match(pointer):
        raise ValueError(f"{pointer} is neither a step nor a list of steps")
    return [
        int(part) if part.isdigit() else part for part in pointer.split("/")[2:] if part != "branch"
    ]


def _list_at(steps: list[Any], path: StepPath) -> list[Any]:
    """The list of steps `path` names (a path ending in an arm) or holds (ending in an index)."""
    current = steps
    whole = len(path) - len(path) % 2
    for i in range(0, whole, 2):
        current = current[int(path[i])]["branch"].setdefault(str(path[i + 1]), [])
    return current


def step_insert(steps: list[Any], *, into: str, index: int, step: dict[str, Any]) -> None:
    """Put `step` at `index` of the list at pointer `into` ("/steps", "/steps/2/branch/else")."""
    path = _location(into)
    if len(path) % 2:
        raise ValueError(f"{into} is a step, not a list of steps")
    target = _list_at(steps, path)
    target.insert(max(0, min(index, len(target))), step)


def step_remove(steps: list[Any], *, at: str) -> None:
    path = _location(at)
    if len(path) % 2 == 0:
        raise ValueError(f"{at} is a list of steps, not a step")
    del _list_at(steps, path)[int(path[-1])]


def step_move(steps: list[Any], *, at: str, by: int) -> None:
    """Move a step up (by=-1) or down (by=1) among its siblings; nothing past either end."""
    path = _location(at)
    if len(path) % 2 == 0:
        raise ValueError(f"{at} is a list of steps, not a step")
    siblings = _list_at(steps, path)
    index = int(path[-1])
    target = index + by
    if 0 <= target < len(siblings):
        siblings.insert(target, siblings.pop(index))


def _send_at(steps: list[Any], at: str) -> dict[str, Any]:
    path = _location(at)
    if len(path) % 2 == 0:
        raise ValueError(f"{at} is a list of steps, not a step")
    send = _list_at(steps, path)[int(path[-1])]["send"]
    if not isinstance(send, dict):
        raise ValueError(f"{at} is not a send step")
    return send


def send_split(steps: list[Any], *, at: str) -> None:
    """Turn the send step at `at` into a split test: variants A and B, weighing the same,
    both starting from the step's message."""
    send = _send_at(steps, at)
    if "variants" in send:
        return
    message = send.pop("message", {})
    send["allocation"] = "split"
    send["variants"] = [
        {"name": name, "weight": 50, "message": copy.deepcopy(message)} for name in ("A", "B")
    ]


def send_unsplit(steps: list[Any], *, at: str) -> None:
    """Back from variants to one message: the first variant's."""
    send = _send_at(steps, at)
    variants = send.pop("variants", None)
    send.pop("allocation", None)
    if variants is not None:
        send["message"] = variants[0]["message"] if variants else {}


def variant_add(steps: list[Any], *, at: str) -> None:
    """Another variant at the end of the send step's, a copy of the last one (its message and
    weight) under the first free letter."""
    variants = _send_at(steps, at)["variants"]
    names = {variant.get("name") for variant in variants}
    last = variants[-1] if variants else {}
    added: dict[str, Any] = {
        "name": next(
            (letter for letter in string.ascii_uppercase if letter not in names),
            f"V{len(variants) + 1}",
        )
    }
    if "weight" in last:
        added["weight"] = last["weight"]
    added["message"] = copy.deepcopy(last.get("message", {}))
    variants.append(added)


def variant_remove(steps: list[Any], *, at: str, index: int) -> None:
    del _send_at(steps, at)["variants"][index]
