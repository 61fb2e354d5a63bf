"""Merge hooks: how apps above identity that keep per-profile data (segment memberships, ...)
take part in a merge and its unmerge without identity importing them. Apps below identity
(consent) are called directly by the merge services instead.

Contract: an app registers, once at import time (its `AppConfig.ready`),

    merge_hook_register(merge_fn, name="segments", unmerge=unmerge_fn)

`merge_fn(*, survivor, duplicate) -> dict` runs inside the merge's transaction, after the
duplicate's identities and events moved, and moves or combines the app's rows; it returns a
JSON-serialisable state that the merge record keeps. `unmerge_fn(*, survivor, duplicate,
state) -> None` gets that state back and restores the duplicate's rows; it runs once both
profiles are rebuilt.

Batched merges (the fuzzy rescan merges thousands at once) call `merge_many(*, pairs) ->
list[dict]` instead when the hook has one: the same, for many (survivor, duplicate) pairs of
distinct profiles, one state per pair, in a few statements rather than a few per pair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

MergeFn = Callable[..., dict[str, Any] | None]
UnmergeFn = Callable[..., None]
MergeManyFn = Callable[..., list[dict[str, Any]]]


@dataclass(frozen=True)
class MergeHook:
    name: str
    merge: MergeFn
    unmerge: UnmergeFn | None = None
    merge_many: MergeManyFn | None = None


_HOOKS: dict[str, MergeHook] = {}


def merge_hook_register(
    merge: MergeFn,
    *,
    name: str | None = None,
    unmerge: UnmergeFn | None = None,
    merge_many: MergeManyFn | None = None,
) -> MergeFn:
    """Register (or replace, by name) a merge hook; returns `merge` so it can decorate."""
    hook_name = name or f"{merge.__module__}.{merge.__qualname__}"
    _HOOKS[hook_name] = MergeHook(hook_name, merge, unmerge, merge_many)
    return merge


def merge_hook_unregister(name: str) -> None:
    _HOOKS.pop(name, None)


def merge_hooks() -> list[MergeHook]:
    return list(_HOOKS.values())


def hook_merge_states(hook: MergeHook, pairs: Sequence[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """Run one hook over (survivor, duplicate) pairs: its states, in the pairs' order."""
    if hook.merge_many is not None:
        return hook.merge_many(pairs=pairs)
    return [
        hook.merge(survivor=survivor, duplicate=duplicate) or {} for survivor, duplicate in pairs
    ]
