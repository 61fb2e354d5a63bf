"""Exact identity resolution and profile merges.

Every identifier an event carries (user id, anonymous id, email, phone, device id; see
`identity.normalize`) is an `Identity` row owned by exactly one profile. Resolving a chunk of
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

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction

from identity.models import Identity
from identity.normalize import USER_ID, EventIdentifiers, Key, event_identifiers
from identity.selectors import identities_owners
from profiles.models import Event, Profile
from profiles.services import profile_absorb

logger = logging.getLogger(__name__)


def _lock_id(key: Key) -> int:
    digest = hashlib.blake2b(f"{key[0]}\x1f{key[1]}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def identity_keys_lock(*, keys: Iterable[Key]) -> None:
    """Hold a transaction-scoped lock on each identity key (Postgres; no-op elsewhere).

    Locks are taken in ascending order of their 64-bit ids in one statement, so concurrent
    callers cannot deadlock on them. Callers must be inside a transaction.
    """
    if connection.vendor != "postgresql":
        return
    lock_ids = sorted({_lock_id(key) for key in keys})
    if not lock_ids:
        return
    with connection.cursor() as cursor:
        # unnest yields the array's order, so the locks are taken in sorted order.
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", [lock_ids]
        )


def _event_identifiers(event: Event) -> EventIdentifiers:
    return event_identifiers(
        user_id=event.user_id,
        anonymous_id=event.anonymous_id,
        # A group's traits describe the company (its email is info@acme.com), not the person.
        traits=None if event.type == "group" else event.traits,
        context=event.context,
        previous_id=getattr(event, "previous_id", None) if event.type == "alias" else None,
    )


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


def _oldest_first(profile: Profile) -> tuple[bool, datetime | None, int]:
    return (profile.first_seen is None, profile.first_seen, profile.pk)


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


def identity_resolve(*, events: Sequence[Event]) -> list[tuple[Profile, list[Event]]]:
    """Resolve a chunk of events to profiles, creating and merging profiles as needed.

    Returns (profile, its events) pairs in profile id order; events without any identifier
    are left out. Sets `event.profile` on the returned events (not saved). Must run inside the
    transaction that claimed the events.
    """
    identifiers = {event.pk: _event_identifiers(event) for event in events}
    all_keys = {key for found in identifiers.values() for key in found.all_keys()}
    identity_keys_lock(keys=all_keys)
    owners = identities_owners(keys=all_keys)
    profiles = _profiles_lock(owners.values())

    groups = _Groups()
    event_root_key: dict[int, Key] = {}
    for event in events:
        found = identifiers[event.pk]
        keys = list(found.keys)
        existing_alternatives = [key for key in found.alternatives if key in owners]
        if found.alternatives and not existing_alternatives:
            # An alias whose previousId nobody has seen yet: remember it as a user id.
            keys.append(next(k for k in found.alternatives if k[0] == USER_ID))
        keys.extend(existing_alternatives)
        if not keys:
            continue
        event_root_key[event.pk] = keys[0]
        for key in keys:
            groups.union(keys[0], key)
            if key in owners:
                groups.union(key, ("profile", profiles[owners[key]].pk))

    # Group members: the keys to own and the existing profiles to unite.
    group_keys: dict[object, set[Key]] = defaultdict(set)
    group_profiles: dict[object, dict[int, Profile]] = defaultdict(dict)
    for event in events:
        if event.pk not in event_root_key:
            continue
        found = identifiers[event.pk]
        root = groups.find(event_root_key[event.pk])
        for key in found.keys:
            group_keys[root].add(key)
        for key in found.alternatives:
            if key in owners or groups.find(key) == root:
                group_keys[root].add(key)
    for key, pid in owners.items():
        if key in groups.parent:
            profile = profiles[pid]
            group_profiles[groups.find(key)][profile.pk] = profile

    # One profile per group: create, reuse, or merge into the oldest.
    new_profiles: dict[object, Profile] = {}
    group_profile: dict[object, Profile] = {}
    for root in group_keys:
        existing = sorted(group_profiles[root].values(), key=_oldest_first)
        if not existing:
            new_profiles[root] = Profile()
            continue
        survivor, *duplicates = existing
        for duplicate in duplicates:
            profile_merge(survivor=survivor, duplicate=duplicate, reason="shared identifier")
        group_profile[root] = survivor
    if new_profiles:
        created = Profile.objects.bulk_create(list(new_profiles.values()))
        group_profile.update(zip(new_profiles, created, strict=True))

    new_identities = [
        Identity(kind=kind, value=value, profile=group_profile[root])
        for root, keys in group_keys.items()
        for kind, value in sorted(keys)
        if (kind, value) not in owners and groups.find((kind, value)) == root
    ]
    Identity.objects.bulk_create(new_identities)

    by_profile: dict[int, tuple[Profile, list[Event]]] = {}
    for event in events:
        if event.pk not in event_root_key:
            continue
        profile = group_profile[groups.find(event_root_key[event.pk])]
        event.profile = profile
        by_profile.setdefault(profile.pk, (profile, []))[1].append(event)
    return [by_profile[pid] for pid in sorted(by_profile)]


@transaction.atomic
def profile_merge(
    *,
    survivor: Profile,
    duplicate: Profile,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
) -> Profile:
    """Merge `duplicate` into `survivor`: one person found under two profiles.

    Moves the duplicate's identities and events to the survivor, merges traits (the most
    recently set value of each trait wins), combines computed features and recounts sessions,
    then leaves the duplicate's row in place, empty, with `merged_into=survivor` (so links to
    it can be followed, and an unmerge has something to restore into). Locks both rows (in id
    order). `actor` is the staff user who asked for it (None for automatic merges) and
    `reason` says why; both are for the merge record of the identity review work.
    Returns the survivor.
    """
    if survivor.pk == duplicate.pk:
        raise ValueError("cannot merge a profile into itself")
    locked = {
        p.pk: p
        for p in Profile.objects.select_for_update()
        .filter(pk__in=[survivor.pk, duplicate.pk])
        .order_by("pk")
    }
    for profile in (survivor, duplicate):
        fresh = locked[profile.pk]
        for field in Profile._meta.concrete_fields:
            setattr(profile, field.attname, getattr(fresh, field.attname))
    if duplicate.merged_into_id is not None:
        raise ValueError(f"profile {duplicate.pk} was already merged into another")

    Identity.objects.filter(profile=duplicate).update(profile=survivor)
    profile_absorb(survivor=survivor, duplicate=duplicate)
    logger.info(
        "merged profile %s into %s (%s)%s",
        duplicate.pk,
        survivor.pk,
        reason or "no reason given",
        f" by user {actor.pk}" if actor is not None else "",
    )
    return survivor
