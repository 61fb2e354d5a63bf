"""Exact identity resolution and profile merges.

Every identifier an event carries (user id, anonymous id, email, phone, device id; see
`profiles.identifiers`) is an `Identity` row owned by exactly one profile. Resolving a chunk of
events:

1. collect the identity keys of all events;
2. take a transaction-scoped Postgres advisory lock on each key, in one sorted order (so two
   workers never deadlock on them), which serialises every worker that sees the same
   identifier: the second one waits, then finds the first one's committed identity and never
   creates a second profile;
3. look all keys up in one query; join keys that appear on one event (an `identify` with an
   anonymous id and a user id, an `alias`'s previousId and userId, an email) together with
   the profiles they already belong to;
4. per joined group: no profile yet → create one; one → that one; several → merge them into
   the oldest (`profile_merge`);
5. create the group's new identities in bulk.

On SQLite (the embedded default) there are no advisory locks; writes are serialised by the
database file lock anyway.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from identity.models import Identity
from identity.rules import (
    MatchRules,
    candidate_for_limit,
    held_breaks_limits,
    match_rules,
    merge_breaks_limits,
)
from identity.selectors import identities_owners
from identity.services.keys import event_identifiers_of, identity_keys_lock
from identity.services.merge import oldest_first, profile_merge
from profiles.identifiers import USER_ID, EventIdentifiers, Key
from profiles.models import Event, Profile

logger = logging.getLogger(__name__)


class _Groups:
    """Union-find over identity keys and existing profiles."""

    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, node: object) -> object:
        self.parent.setdefault(node, node)
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: object, b: object) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


@dataclass
class _Chunk:
    """A chunk of events being resolved: their identifiers, the locked profiles that own
    their keys already, and what the grouping steps fill: the groups of keys and profiles,
    and per event the key that anchors it in its group."""

    events: Sequence[Event]
    identifiers: dict[int, EventIdentifiers]
    owners: dict[Key, int]
    profiles: dict[int, Profile]
    groups: _Groups = field(default_factory=_Groups)
    event_root_key: dict[int, Key] = field(default_factory=dict)


def _profiles_lock(profile_ids: Iterable[int]) -> dict[int, Profile]:
    """Lock profiles (in id order) and follow merges to their survivors: {asked id: profile}."""
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    locked = {
        p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    resolved: dict[int, Profile] = {}
    for pid in ids:
        profile = locked[pid]
        seen = {pid}
        while profile.merged_into_id is not None and profile.merged_into_id not in seen:
            seen.add(profile.merged_into_id)
            target = locked.get(profile.merged_into_id)
            if target is None:
                target = Profile.objects.select_for_update().get(pk=profile.merged_into_id)
                locked[target.pk] = target
            profile = target
        resolved[pid] = profile
    return resolved


def _event_keys(found: EventIdentifiers, owners: dict[Key, int]) -> list[Key]:
    """The keys an event joins: its own, plus an alias's previousId where it exists."""
    keys = list(found.keys)
    existing_alternatives = [key for key in found.alternatives if key in owners]
    if found.alternatives and not existing_alternatives:
        # An alias whose previousId nobody has seen yet: remember it as a user id.
        keys.append(next(k for k in found.alternatives if k[0] == USER_ID))
    keys.extend(existing_alternatives)
    return keys


def _events_group_limited(chunk: _Chunk, rules: MatchRules) -> list[tuple[object, object]]:
    """Group events and keys as Segment's identity resolution settings say, event by event.

    Each event's identifiers are taken in priority order (`kind_priority`; kinds not listed
    come last). The first one anchors the event: its profile, or a new one. Each next
    identifier joins the anchor's group (attaching a new key, or merging the profile that owns
    it) only if the group then keeps within every per-kind limit; otherwise it is left out and,
    when another profile owns it, the two groups are returned as a conflict for staff to
    decide. Fills the chunk's `groups` and `event_root_key`; returns the conflicts (nodes of
    both groups).
    """
    rank = {kind: number for number, kind in enumerate(rules.priority)}
    limits = rules.limits
    # Per group root: the values it holds of each limited kind.
    held: dict[object, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    survivors = {profile.pk for profile in chunk.profiles.values()}
    for pid, kind, value in Identity.objects.filter(
        profile_id__in=survivors, kind__in=list(limits)
    ).values_list("profile_id", "kind", "value"):
        held[chunk.groups.find(("profile", pid))][kind].add(value)
    for key, pid in chunk.owners.items():
        _union_held(chunk.groups, held, ("profile", chunk.profiles[pid].pk), key)

    def fits(root: object, other: dict[str, set[str]]) -> bool:
        return not held_breaks_limits(held.get(root, {}), other, limits)

    conflicts: list[tuple[object, object]] = []
    placed = set(chunk.owners)
    dropped = 0
    for event in chunk.events:
        keys = sorted(
            _event_keys(chunk.identifiers[event.pk], chunk.owners),
            key=lambda k: rank.get(k[0], len(rank)),
        )
        if not keys:
            continue
        anchor = keys[0]
        chunk.event_root_key[event.pk] = anchor
        if anchor not in placed:
            placed.add(anchor)
            if anchor[0] in limits:
                held[chunk.groups.find(anchor)][anchor[0]].add(anchor[1])
        for key in keys[1:]:
            root = chunk.groups.find(anchor)
            if key in placed:
                other = chunk.groups.find(key)
                if other == root:
                    continue
                if fits(root, held.get(other, {})):
                    _union_held(chunk.groups, held, anchor, key)
                else:
                    conflicts.append((anchor, key))
            elif key[0] not in limits or fits(root, {key[0]: {key[1]}}):
                placed.add(key)
                _union_held(chunk.groups, held, anchor, key)
                if key[0] in limits:
                    held[chunk.groups.find(anchor)][key[0]].add(key[1])
            else:
                dropped += 1  # a second value of a limited kind: the event still has it
    if dropped:
        logger.info("%s identifiers left off their profiles by per-kind limits", dropped)
    return conflicts


def _union_held(
    groups: _Groups, held: dict[object, dict[str, set[str]]], a: object, b: object
) -> None:
    ra, rb = groups.find(a), groups.find(b)
    if ra == rb:
        return
    groups.union(ra, rb)
    kept = groups.find(ra)
    gone = rb if kept == ra else ra
    if gone in held:
        into = held[kept]
        for kind, values in held.pop(gone).items():
            into[kind] |= values


def _candidate_for_conflict(
    first: object,
    second: object,
    group_profile: dict[object, Profile],
    group_profiles: dict[object, dict[int, Profile]],
) -> None:
    """Queue two groups that a per-kind limit kept apart, for staff to decide."""

    def profile_of(root: object) -> Profile | None:
        if root in group_profile:
            return group_profile[root]
        existing = sorted(group_profiles.get(root, {}).values(), key=oldest_first)
        return existing[0] if existing else None

    a, b = profile_of(first), profile_of(second)
    if a is not None and b is not None and a.pk != b.pk:
        candidate_for_limit(first=a, second=b)


def identity_resolve(*, events: Sequence[Event]) -> list[tuple[Profile, list[Event]]]:
    """Resolve a chunk of events to profiles, creating and merging profiles as needed.

    Returns (profile, its events) pairs in profile id order; events without any identifier
    are left out. Sets `event.profile` on the returned events (not saved). Must run inside the
    transaction that claimed the events.
    """
    rules = match_rules()
    identifiers = {event.pk: rules.allowed(event_identifiers_of(event=event)) for event in events}
    all_keys = {key for found in identifiers.values() for key in found.all_keys()}
    identity_keys_lock(keys=all_keys)
    owners = identities_owners(keys=all_keys)
    chunk = _Chunk(events, identifiers, owners, profiles=_profiles_lock(owners.values()))

    conflicts: list[tuple[object, object]] = []
    if rules.limits:
        conflicts = _events_group_limited(chunk, rules)
    else:
        _events_group(chunk)
    group_keys, group_profiles = _groups_members(chunk)
    group_profile = _groups_profile(group_keys, group_profiles, rules)
    Identity.objects.bulk_create(
        [
            Identity(kind=kind, value=value, profile=group_profile[root])
            for root, keys in group_keys.items()
            for kind, value in sorted(keys)
            if (kind, value) not in owners and chunk.groups.find((kind, value)) == root
        ]
    )
    for first, second in conflicts:
        _candidate_for_conflict(
            chunk.groups.find(first), chunk.groups.find(second), group_profile, group_profiles
        )
    return _events_by_profile(chunk, group_profile)


def _events_group(chunk: _Chunk) -> None:
    """Group events and keys without per-kind limits: everything an event carries joins one
    group, with the profiles its keys belong to. Fills the chunk's `groups` and
    `event_root_key`."""
    for event in chunk.events:
        keys = _event_keys(chunk.identifiers[event.pk], chunk.owners)
        if not keys:
            continue
        chunk.event_root_key[event.pk] = keys[0]
        for key in keys:
            chunk.groups.union(keys[0], key)
            if key in chunk.owners:
                chunk.groups.union(key, ("profile", chunk.profiles[chunk.owners[key]].pk))


def _groups_members(
    chunk: _Chunk,
) -> tuple[dict[object, set[Key]], dict[object, dict[int, Profile]]]:
    """Per group root: the keys it is to own, and the existing profiles it unites."""
    group_keys: dict[object, set[Key]] = defaultdict(set)
    group_profiles: dict[object, dict[int, Profile]] = defaultdict(dict)
    for event in chunk.events:
        if event.pk not in chunk.event_root_key:
            continue
        found = chunk.identifiers[event.pk]
        root = chunk.groups.find(chunk.event_root_key[event.pk])
        for key in found.keys:
            group_keys[root].add(key)
        for key in found.alternatives:
            if key in chunk.owners or chunk.groups.find(key) == root:
                group_keys[root].add(key)
    for key, pid in chunk.owners.items():
        if key in chunk.groups.parent:
            profile = chunk.profiles[pid]
            group_profiles[chunk.groups.find(key)][profile.pk] = profile
    return group_keys, group_profiles


def _groups_profile(
    group_keys: dict[object, set[Key]],
    group_profiles: dict[object, dict[int, Profile]],
    rules: MatchRules,
) -> dict[object, Profile]:
    """One profile per group: a new one, the one it has, or its profiles merged into the
    oldest (a merge a per-kind limit forbids is queued for staff instead)."""
    new_profiles: dict[object, Profile] = {}
    group_profile: dict[object, Profile] = {}
    for root in group_keys:
        existing = sorted(group_profiles[root].values(), key=oldest_first)
        if not existing:
            new_profiles[root] = Profile()
            continue
        survivor, *duplicates = existing
        for duplicate in duplicates:
            if rules.limits and merge_breaks_limits(
                survivor=survivor, duplicate=duplicate, limits=rules.limits
            ):
                # Not automatic: staff decide (Segment's per-kind limits).
                candidate_for_limit(first=survivor, second=duplicate)
                continue
            profile_merge(survivor=survivor, duplicate=duplicate, reason="shared identifier")
        group_profile[root] = survivor
    if new_profiles:
        created = Profile.objects.bulk_create(list(new_profiles.values()))
        group_profile.update(zip(new_profiles, created, strict=True))
    return group_profile


def _events_by_profile(
    chunk: _Chunk, group_profile: dict[object, Profile]
) -> list[tuple[Profile, list[Event]]]:
    """(profile, its events) in profile id order, `event.profile` set on each event."""
    by_profile: dict[int, tuple[Profile, list[Event]]] = {}
    for event in chunk.events:
        if event.pk not in chunk.event_root_key:
            continue
        profile = group_profile[chunk.groups.find(chunk.event_root_key[event.pk])]
        event.profile = profile
        by_profile.setdefault(profile.pk, (profile, []))[1].append(event)
    return [by_profile[pid] for pid in sorted(by_profile)]
