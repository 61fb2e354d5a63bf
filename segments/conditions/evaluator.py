"""The pure-Python reference evaluator, used by the differential test and by the "why is
this profile in or out" explanation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from profiles.features import DATETIME_FEATURES as DATETIME_COMPUTED
from profiles.features import NUMERIC_FEATURES as NUMERIC_COMPUTED
from segments.conditions.schema import GROUP_KEYS
from segments.conditions.tree import node_kind
from segments.conditions.values import (
    MISSING,
    compare,
    datetime_matches,
    duration,
    lookup_path,
    recency_matches,
    recency_reference,
    short_repr,
    value_matches,
    window_bounds,
)
from segments.conditions.words import describe_node


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
    return compare(len(events), count["op"], count["value"])


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
    show: Callable[[str, Any], str] = lambda _trait, value: short_repr(value),
    _seen: frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """The evaluation as a tree: {"text", "result", "detail", "children"} per node.
    `show(trait, value)` writes a trait's value into the detail (the caller masks PII)."""
    kind = node_kind(node)
    children: list[dict[str, Any]] = []
    detail = ""
    if kind in GROUP_KEYS:
        children = [
            explain(c, facts, now=now, segments=segments, show=show, _seen=_seen)
            for c in node[kind]
        ]
        results = [c["result"] for c in children]
        result = (
            all(results) if kind == "all" else any(results) if kind == "any" else not any(results)
        )
    elif kind == "trait":
        actual = lookup_path(facts.traits, node["trait"])
        result = value_matches(actual, node["op"], node.get("value"), now)
        detail = "no such trait" if actual is MISSING else f"value: {show(node['trait'], actual)}"
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
            explain(
                target,
                facts,
                now=now,
                segments=segments,
                show=show,
                _seen=_seen | {node["segment"]},
            )
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
