"""Dependencies: what a change must touch for a segment to need re-evaluation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from segments.conditions.schema import GROUP_KEYS
from segments.conditions.tree import node_kind


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
