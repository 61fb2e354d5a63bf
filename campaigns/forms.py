"""The campaign editor's form. A journey arrives either as the JSON the API takes (the editor's
JSON view) or as the visual editor's fields, each named by the JSON pointer of what it edits
and a field name: `/steps/1:subject`, `/steps/2/branch/then/0:amount`, `/trigger:event`. Both
become the same definition, checked by the service the API uses, so the errors it returns
(JSON pointers) land on the node that caused them.

`journey_from_fields` reads the fields; `journey_nodes` turns a definition (valid or not) back
into what the editor's templates draw. They are inverses on what the editor can show; what it
cannot (a step of another shape) travels as JSON in a `:raw` field, unchanged.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings

from campaigns.definition import DURATION_UNITS, MAX_VARIANTS
from campaigns.models import Campaign, Channel
from segments.conditions import ConditionError, describe_node

VISUAL, JSON_VIEW = "visual", "json"
UNITS = tuple(DURATION_UNITS)


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=Campaign.Kind.choices)
    # Which view the journey was edited in; a client posting only `definition` means JSON.
    mode = forms.ChoiceField(choices=[(VISUAL, VISUAL), (JSON_VIEW, JSON_VIEW)], required=False)
    definition = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"}),
    )

    def clean(self) -> dict[str, Any]:
        """Reads the journey even when a field is wrong, so that the page can draw it again:
        `self.journey` is the definition as edited, `self.problems` what kept it from being
        read (JSON pointers, like the validator's)."""
        cleaned = super().clean() or {}
        self.journey, self.problems = journey_read(self.data)
        if self.problems:
            raise forms.ValidationError("The journey has problems: see the marked places.")
        cleaned["definition"] = self.journey
        return cleaned


def journey_mode(data: Mapping[str, Any]) -> str:
    mode = data.get("mode")
    if mode in (VISUAL, JSON_VIEW):
        return str(mode)
    return JSON_VIEW if "definition" in data else VISUAL


def journey_read(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[ConditionError]]:
    """The definition in the posted form, from whichever view it was edited in."""
    if journey_mode(data) == VISUAL:
        return journey_from_fields(data)
    try:
        value = json.loads(data.get("definition") or "")
    except json.JSONDecodeError as error:
        return {}, [ConditionError("", f"not valid JSON: {error}")]
    if not isinstance(value, dict):
        return {}, [ConditionError("", "the definition is a JSON object")]
    return value, []


# --- fields -> definition --------------------------------------------------------------------


def field(pointer: str, name: str) -> str:
    return f"{pointer}:{name}"


def _text(data: Mapping[str, Any], pointer: str, name: str) -> str:
    # Browsers send a textarea's line breaks as CRLF; the definition keeps what was typed.
    return str(data.get(field(pointer, name)) or "").replace("\r\n", "\n")


def _number(raw: str) -> Any:
    """An integer or decimal as typed, or the text itself (the validator then says where)."""
    raw = raw.strip()
    if re.fullmatch(r"-?\d{1,12}", raw):
        return int(raw)
    if re.fullmatch(r"-?\d{1,12}\.\d{1,6}", raw):
        return float(raw)
    return raw


def _duration(
    data: Mapping[str, Any], pointer: str, at: str, problems: list[ConditionError]
) -> dict[str, Any]:
    unit = _text(data, pointer, "unit")
    unit = unit if unit in DURATION_UNITS else "days"
    amount = _number(_text(data, pointer, "amount"))
    if not isinstance(amount, int):
        problems.append(ConditionError(f"{at}/{unit}", f"how many {unit}: a whole number"))
    return {unit: amount}


def _json(
    data: Mapping[str, Any], pointer: str, name: str, problems: list[ConditionError], at: str
) -> Any:
    raw = _text(data, pointer, name).strip()
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        problems.append(ConditionError(at, f"not valid JSON: {error}"))
        return None


def _filters(data: Mapping[str, Any], pointer: str, problems: list[ConditionError]) -> list[Any]:
    where = _json(data, pointer, "where", problems, f"{pointer}/where")
    return where if isinstance(where, list) else []


def _event_node(data: Mapping[str, Any], pointer: str, problems: list[ConditionError]) -> dict:
    node: dict[str, Any] = {"event": _text(data, pointer, "event").strip()}
    where = _filters(data, pointer, problems)
    if where:
        node["where"] = where
    return node


def _broadcast_at(data: Mapping[str, Any]) -> str:
    """A broadcast's time, typed in the workspace's zone, as ISO 8601 with its offset (the
    saved text when it is the same moment, so that opening and saving changes nothing)."""
    typed, saved = _text(data, "/trigger", "at").strip(), _text(data, "/trigger", "at_saved")
    try:
        moment = dt.datetime.fromisoformat(typed)
    except ValueError:
        return typed
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(settings.CAMPAIGN_TIMEZONE))
    try:
        if dt.datetime.fromisoformat(saved) == moment:
            return saved
    except (ValueError, TypeError):
        pass
    return moment.isoformat()


def _trigger(data: Mapping[str, Any], problems: list[ConditionError]) -> dict[str, Any]:
    kind = _text(data, "/trigger", "kind")
    if kind == "segment":
        on = _text(data, "/trigger", "on")
        return {
            "segment": _number(_text(data, "/trigger", "segment")),
            "on": on if on in ("enter", "exit") else "enter",
        }
    if kind == "broadcast":
        return {
            "broadcast": {
                "segment": _number(_text(data, "/trigger", "segment")),
                "at": _broadcast_at(data),
            }
        }
    return _event_node(data, "/trigger", problems)


def _posted_form(data: Mapping[str, Any], owner: str) -> str:
    """Which message form the page drew for `owner` (a send step or one of its variants):
    email's fields, push's, or a JSON body."""
    if field(owner, "subject") in data:
        return "email"
    return "push" if field(owner, "title") in data else "json"


def _message(data: Mapping[str, Any], owner: str, problems: list[ConditionError], at: str) -> Any:
    """The message the fields of `owner` describe (a send step's or a variant's, named by
    its pointer); `at` is the message's own pointer, for the problems."""
    form = _posted_form(data, owner)
    if form == "email":
        message = {"subject": _text(data, owner, "subject")}
        for part in ("html", "text"):
            if _text(data, owner, part):
                message[part] = _text(data, owner, part)
        return message
    if form == "push":
        message = {"title": _text(data, owner, "title"), "body": _text(data, owner, "body")}
        if _text(data, owner, "url").strip():
            message["url"] = _text(data, owner, "url").strip()
        if _text(data, owner, "data").strip():
            message["data"] = _json(data, owner, "data", problems, f"{at}/data")
        return message
    return _json(data, owner, "message", problems, at)


def _variant(data: Mapping[str, Any], owner: str, problems: list[ConditionError]) -> Any:
    variant: dict[str, Any] = {"name": _text(data, owner, "name")}
    # No weight typed is no weight: the variant then weighs 1, as through the API.
    if _text(data, owner, "weight").strip():
        variant["weight"] = _number(_text(data, owner, "weight"))
    variant["message"] = _message(data, owner, problems, f"{owner}/message")
    return variant


def _indices(data: Mapping[str, Any], into: str, name: str) -> list[int]:
    """The indices of the items of the list at pointer `into` that have a field `name`."""
    found = re.compile(re.escape(into) + r"/(\d+):" + re.escape(name) + r"\Z")
    return sorted({int(m.group(1)) for key in data if (m := found.match(key))})


def step_from_fields(data: Mapping[str, Any], pointer: str, problems: list[ConditionError]) -> Any:
    """The step at `pointer` as its fields describe it (problems appended to `problems`)."""
    kind = _text(data, pointer, "kind")
    if kind == "wait":
        return {"wait": _duration(data, pointer, f"{pointer}/wait", problems)}
    if kind == "until":
        return {"wait": {"until_hour": _number(_text(data, pointer, "hour"))}}
    if kind == "branch":
        branch: dict[str, Any] = {
            "if": _json(data, pointer, "if", problems, f"{pointer}/branch/if")
        }
        for arm in ("then", "else"):
            steps = _steps(data, f"{pointer}/branch/{arm}", problems)
            if steps:
                branch[arm] = steps
        return {"branch": branch}
    if kind == "send":
        send: dict[str, Any] = {"channel": _number(_text(data, pointer, "channel"))}
        # A step drawn with variants has an allocation field; each variant, a name field.
        if field(pointer, "allocation") in data:
            send["allocation"] = _text(data, pointer, "allocation") or "split"
            variants = f"{pointer}/send/variants"
            send["variants"] = [
                _variant(data, f"{variants}/{index}", problems)
                for index in _indices(data, variants, "name")
            ]
        else:
            send["message"] = _message(data, pointer, problems, f"{pointer}/send/message")
        return {"send": send}
    return _json(data, pointer, "raw", problems, pointer)


def _steps(data: Mapping[str, Any], into: str, problems: list[ConditionError]) -> list[Any]:
    """The steps of the list at pointer `into`, in the order of their indices."""
    return [
        step_from_fields(data, f"{into}/{index}", problems)
        for index in _indices(data, into, "kind")
    ]


def editor_message(
    data: Mapping[str, Any], pointer: str, variant: str
) -> tuple[Any, str, str, Any, list[ConditionError]]:
    """One message of the send step at `pointer` as the editor's fields show it (the
    `variant`-th variant's when `variant` is an index), for a preview or a test send of
    edits not saved: (channel, the fields' owner pointer, the message's pointer, message,
    what could not be read). The other variants are not read: a half-written one does not
    hold up testing this one."""
    owner, at = pointer, f"{pointer}/send/message"
    if variant.isdigit():
        owner = f"{pointer}/send/variants/{int(variant)}"
        at = f"{owner}/message"
    channel = _number(_text(data, pointer, "channel"))
    # Drawn on the page: the variant's fields, or the one message of a step without variants.
    if owner == pointer:
        drawn = field(pointer, "allocation") not in data
    else:
        drawn = field(owner, "name") in data
    if _text(data, pointer, "kind") != "send" or not drawn:
        return channel, owner, at, None, [ConditionError(at, "no such message on this page")]
    problems: list[ConditionError] = []
    message = _message(data, owner, problems, at)
    return channel, owner, at, message, problems


def message_field(form: str, inside: str) -> str:
    """The field of a message form that a problem at `inside` (a pointer within the message:
    "/subject", "/data/screen") is about; "" for the message as a whole."""
    if form == "json":
        return "message"
    return inside.split("/")[1] if inside.startswith("/") else ""


def editor_message_errors(
    data: Mapping[str, Any], owner: str, at: str, errors: Sequence[ConditionError]
) -> list[dict[str, str]]:
    """Problems of the message at pointer `at`, each with the name of the field it is
    about ("" when none), as the editor marks them."""
    form = _posted_form(data, owner)
    found = []
    for error in errors:
        inside = error.pointer[len(at) :] if error.pointer.startswith(at) else ""
        key = message_field(form, inside)
        found.append(
            {
                "field": field(owner, key) if key else "",
                "at": error.pointer[len(owner) :].lstrip("/"),
                "message": error.message,
            }
        )
    return found


def journey_from_fields(data: Mapping[str, Any]) -> tuple[dict[str, Any], list[ConditionError]]:
    """The definition the visual editor's fields describe, and what could not be read."""
    problems: list[ConditionError] = []
    policy = _text(data, "/entry", "policy")
    definition: dict[str, Any] = {
        "trigger": _trigger(data, problems),
        "entry": {"once_per": _duration(data, "/entry", "/entry/once_per", problems)}
        if policy == "once_per"
        else (policy if policy in ("once", "every_time") else "once"),
    }
    if data.get(field("/goal", "on")):
        definition["goal"] = {
            **_event_node(data, "/goal", problems),
            "within": _duration(data, "/goal", "/goal/within", problems),
        }
    if data.get(field("/frequency_cap", "on")):
        definition["frequency_cap"] = {
            "messages": _number(_text(data, "/frequency_cap", "messages")),
            "days": _number(_text(data, "/frequency_cap", "days")),
        }
    if _text(data, "/control", "percent").strip():
        definition["control"] = {"percent": _number(_text(data, "/control", "percent"))}
    definition["steps"] = _steps(data, "/steps", problems)
    return definition, problems


# --- definition -> what the editor draws -----------------------------------------------------

NEW_STEPS: dict[str, dict[str, Any]] = {
    "wait": {"wait": {"hours": 1}},
    "until": {"wait": {"until_hour": 9}},
    "branch": {
        "branch": {
            "if": {
                "all": [
                    {
                        "event": "Order Completed",
                        "count": {"op": "gte", "value": 1},
                        "within": {"days": 1},
                    }
                ]
            }
        }
    },
}


def step_new(kind: str, channels: Sequence[Channel]) -> dict[str, Any]:
    """What the editor adds for "+ Wait", "+ Branch", "+ Send" (a send through the first email
    channel, or the first channel, with an empty message the validator will ask to fill)."""
    if kind == "send":
        usable = [c for c in channels if c.is_active] or list(channels)
        usable.sort(key=lambda c: c.kind != Channel.Kind.EMAIL)
        channel = usable[0] if usable else None
        kind_of = channel.kind if channel else Channel.Kind.EMAIL
        return {"send": {"channel": channel.pk if channel else 0, "message": _empty(kind_of)}}
    return json.loads(json.dumps(NEW_STEPS[kind]))


def _empty(channel_kind: str) -> dict[str, Any]:
    if channel_kind == Channel.Kind.EMAIL:
        return {"subject": "", "text": ""}
    if channel_kind in (Channel.Kind.PUSH, Channel.Kind.WEB_PUSH):
        return {"title": "", "body": ""}
    return {}


def _errors_by_owner(
    errors: Sequence[ConditionError], owners: Sequence[str]
) -> dict[str, list[dict[str, str]]]:
    """Each error under the deepest owner (a step's or a section's pointer) it lies in, with
    its pointer relative to that owner; "" owns the rest."""
    found: dict[str, list[dict[str, str]]] = {}
    ranked = sorted(owners, key=len, reverse=True)
    for error in errors:
        owner = next(
            (o for o in ranked if error.pointer == o or error.pointer.startswith(o + "/")), ""
        )
        found.setdefault(owner, []).append(
            {"at": error.pointer[len(owner) :].lstrip("/"), "message": error.message}
        )
    return found


def _dom_id(pointer: str) -> str:
    return "node" + re.sub(r"[^A-Za-z0-9]+", "-", pointer)


def _duration_fields(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict) and len(spec) == 1:
        ((unit, amount),) = spec.items()
        return {"unit": unit, "amount": amount}
    return {"unit": "days", "amount": ""}


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _message_form(channel_kind: str, message: Any) -> dict[str, Any]:
    """Which fields the editor draws for a message through a channel of this kind (`form`),
    and what they hold."""
    message = message if isinstance(message, dict) else {}
    shown: dict[str, Any] = {"message": message}
    if channel_kind == Channel.Kind.EMAIL:
        shown["form"] = "email"
    elif channel_kind in (Channel.Kind.PUSH, Channel.Kind.WEB_PUSH):
        shown["form"] = "push"
        if isinstance(message.get("data"), dict):
            shown["data"] = _dumps(message["data"])
    else:
        shown.update(form="json", message_json=_dumps(message))
    return shown


def _send_node(
    send: Mapping[str, Any], pointer: str, channels: Mapping[int, Channel]
) -> dict[str, Any]:
    channel = channels.get(send.get("channel")) if isinstance(send.get("channel"), int) else None
    kind = channel.kind if channel else ""
    node: dict[str, Any] = {
        "channel": send.get("channel"),
        "channel_kind": kind,
        "editable_test": bool(channel and channel.kind == Channel.Kind.EMAIL),
    }
    if "variants" not in send:
        return node | _message_form(kind, send.get("message"))
    variants = send["variants"]
    node["allocation"] = send.get("allocation", "split")
    node["variants"] = [
        {
            "pointer": f"{pointer}/send/variants/{index}",
            "dom": _dom_id(f"{pointer}/send/variants/{index}"),
            "index": index,
            "name": variant.get("name", ""),
            "weight": variant.get("weight", ""),
            "removable": len(variants) > 2,
            **_message_form(kind, variant.get("message")),
        }
        for index, variant in enumerate(variants)
    ]
    node["can_add_variant"] = len(variants) < MAX_VARIANTS
    return node


def _drawable_send(send: Mapping[str, Any]) -> bool:
    """Whether the visual editor can draw this send step's fields (variants typed in the
    JSON view may be of any shape; such a step travels as JSON)."""
    variants = send.get("variants", [])
    return isinstance(variants, list) and all(isinstance(v, dict) for v in variants)


def _step_node(step: Any, pointer: str, channels: Mapping[int, Channel]) -> dict[str, Any]:
    node: dict[str, Any] = {"pointer": pointer, "dom": _dom_id(pointer)}
    shape = next(iter(step), None) if isinstance(step, dict) and len(step) == 1 else None
    body = step[shape] if shape else None
    if shape == "wait" and isinstance(body, dict) and "until_hour" in body:
        node.update(kind="until", hour=body["until_hour"])
    elif shape == "wait" and isinstance(body, dict):
        node.update(kind="wait", **_duration_fields(body))
    elif shape == "branch" and isinstance(body, dict) and isinstance(body.get("if"), dict):
        try:
            words = describe_node(body["if"])
        except (KeyError, TypeError, ValueError, AttributeError):
            words = ""
        node.update(kind="branch", condition=json.dumps(body["if"]), words=words)
        for arm in ("then", "else"):
            steps = body.get(arm)
            node[arm] = _step_nodes(
                steps if isinstance(steps, list) else [], f"{pointer}/branch/{arm}", channels
            )
            node[f"{arm}_list"] = f"{pointer}/branch/{arm}"
    elif shape == "send" and isinstance(body, dict) and _drawable_send(body):
        node.update(kind="send", **_send_node(body, pointer, channels))
    else:
        node.update(kind="raw", raw=_dumps(step))
    return node


def _step_nodes(
    steps: Sequence[Any], into: str, channels: Mapping[int, Channel]
) -> list[dict[str, Any]]:
    nodes = []
    for index, step in enumerate(steps):
        node = _step_node(step, f"{into}/{index}", channels)
        node.update(list=into, index=index, first=index == 0, last=index == len(steps) - 1)
        nodes.append(node)
    return nodes


def _pointers(nodes: Sequence[dict[str, Any]]) -> list[str]:
    found = []
    for node in nodes:
        found.append(node["pointer"])
        if node["kind"] == "branch":
            found += _pointers(node["then"]) + _pointers(node["else"])
    return found


def _invalid_fields(errors: Sequence[dict[str, str]], message_at: str, form: str) -> list[str]:
    """The fields of a message form (and a variant's name and weight) that errors at pointers
    relative to the fields' owner are about: `message_at` is where the message lies."""
    keys = []
    for error in errors:
        at = "/" + error["at"]
        if at == message_at or at.startswith(message_at + "/"):
            keys.append(message_field(form, at[len(message_at) :]))
        elif at in ("/name", "/weight", "/send/channel", "/send/allocation"):
            keys.append(at.rsplit("/", 1)[1])
    return [key for key in keys if key]


def _attach_send(node: dict[str, Any]) -> None:
    """A send step's errors at its fields; a variant's in the variant's own box."""
    if "variants" not in node:
        node["invalid"] = _invalid_fields(node["errors"], "/send/message", node["form"])
        return
    remaining = list(node["errors"])
    for variant in node["variants"]:
        inside = f"send/variants/{variant['index']}"
        mine = [e for e in remaining if e["at"] == inside or e["at"].startswith(inside + "/")]
        remaining = [e for e in remaining if e not in mine]
        variant["errors"] = [
            {"at": e["at"][len(inside) :].lstrip("/"), "message": e["message"]} for e in mine
        ]
        variant["invalid"] = _invalid_fields(variant["errors"], "/message", variant["form"])
    node["errors"] = remaining
    node["invalid"] = _invalid_fields(node["errors"], "/send/message", "")
    node["marked"] = node["marked"] or any(v["errors"] for v in node["variants"])


def _attach(nodes: Sequence[dict[str, Any]], errors: Mapping[str, list[dict[str, str]]]) -> None:
    for node in nodes:
        node["errors"] = errors.get(node["pointer"], [])
        node["marked"] = bool(node["errors"])
        if node["kind"] == "send":
            _attach_send(node)
        if node["kind"] == "branch":
            # Pointers inside the condition, for the builder to mark its own rows.
            node["condition_errors"] = json.dumps(
                [
                    "/" + e["at"][len("branch/if/") :]
                    for e in node["errors"]
                    if e["at"].startswith("branch/if/")
                ]
            )
            _attach(node["then"], errors)
            _attach(node["else"], errors)


def _local_time(raw: Any) -> str:
    """A broadcast's ISO time as a datetime-local value in the workspace's zone."""
    try:
        moment = dt.datetime.fromisoformat(str(raw))
    except ValueError:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(settings.CAMPAIGN_TIMEZONE))
    return moment.strftime("%Y-%m-%dT%H:%M")


def journey_nodes(
    definition: Mapping[str, Any],
    *,
    errors: Sequence[ConditionError] = (),
    channels: Sequence[Channel] = (),
) -> dict[str, Any]:
    """What the visual editor draws for a definition (which need not be valid): the trigger,
    entry policy, goal, limits and the steps as nested nodes, each with its errors."""
    by_id = {channel.pk: channel for channel in channels}
    steps = definition.get("steps")
    nodes = _step_nodes(steps if isinstance(steps, list) else [], "/steps", by_id)
    sections = ["/trigger", "/entry", "/goal", "/frequency_cap", "/control"]
    owned = _errors_by_owner(errors, [*sections, *_pointers(nodes)])
    _attach(nodes, owned)

    trigger = definition.get("trigger") if isinstance(definition.get("trigger"), dict) else {}
    shown: dict[str, Any] = {"kind": "event", "event": "", "where": "[]", "on": "enter"}
    if "segment" in trigger:
        shown.update(kind="segment", segment=trigger["segment"], on=trigger.get("on", "enter"))
    elif isinstance(trigger.get("broadcast"), dict):
        broadcast = trigger["broadcast"]
        shown.update(
            kind="broadcast",
            segment=broadcast.get("segment"),
            at=_local_time(broadcast.get("at")),
            at_saved=broadcast.get("at", ""),
        )
    else:
        shown.update(event=trigger.get("event", ""), where=json.dumps(trigger.get("where", [])))
    entry = definition.get("entry", "once")
    goal = definition.get("goal") if isinstance(definition.get("goal"), dict) else None
    cap = (
        definition.get("frequency_cap")
        if isinstance(definition.get("frequency_cap"), dict)
        else None
    )
    control = definition.get("control") if isinstance(definition.get("control"), dict) else None
    return {
        "trigger": shown,
        "entry": {
            "policy": "once_per" if isinstance(entry, dict) else entry,
            **_duration_fields(entry.get("once_per") if isinstance(entry, dict) else {"days": 7}),
        },
        "goal": {
            "on": goal is not None,
            "event": (goal or {}).get("event", "Order Completed"),
            "where": json.dumps((goal or {}).get("where", [])),
            **_duration_fields((goal or {}).get("within", {"days": 3})),
        },
        "cap": {"on": cap is not None, **(cap or {"messages": 3, "days": 7})},
        "control": control.get("percent", "") if control else "",
        "steps": nodes,
        "problems": {
            "top": owned.get("", []),
            "trigger": owned.get("/trigger", []),
            "entry": owned.get("/entry", []),
            "goal": owned.get("/goal", []),
            "cap": owned.get("/frequency_cap", []),
            "control": owned.get("/control", []),
        },
        "units": UNITS,
        "hours": range(24),
        "zone": settings.CAMPAIGN_TIMEZONE,
    }


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(choices=Channel.Kind.choices)
    name = forms.CharField(max_length=200)
    config = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "code"}),
        help_text='email: {"from": "shop@example.com", "from_name": "The Shop"}; '
        'webhook and push: {"url": "https://..."}; web push: {} or {"ttl": 3600}',
    )

    def clean_config(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["config"])
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The config is a JSON object.")
        return value
