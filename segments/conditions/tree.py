"""Walking a definition tree: node kinds, JSON pointers, referenced segments, cycles."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from segments.conditions.schema import GROUP_KEYS, KINDS


def json_pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def node_kind(node: Mapping[str, Any]) -> str:
    for kind in KINDS:
        if kind in node:
            return kind
    raise KeyError("no kind")


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
    yield json_pointer(path), node
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
