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
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from identity.hooks import hook_merge_states, merge_hooks
from identity.models import (
    CandidateStatus,
    Identity,
    MatchCandidate,
    MatchSettings,
    MergeRecord,
    NotSamePerson,
)
from identity.normalize import USER_ID, EventIdentifiers, Key, event_identifiers
from identity.rules import MatchRules, candidate_for_limit, match_rules, merge_breaks_limits
from identity.selectors import identities_owners, match_settings, profile_current
from profiles.models import Event, Profile
from profiles.services import (
    COMPUTED_FIELDS,
    profile_apply_events,
    profiles_absorb,
    profiles_save,
    profiles_sessions_recount,
    rows_update_from_map,
)

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


def _event_keys(found: EventIdentifiers, owners: dict[Key, int]) -> list[Key]:
    """The keys an event joins: its own, plus an alias's previousId where it exists."""
    keys = list(found.keys)
    existing_alternatives = [key for key in found.alternatives if key in owners]
    if found.alternatives and not existing_alternatives:
        # An alias whose previousId nobody has seen yet: remember it as a user id.
        keys.append(next(k for k in found.alternatives if k[0] == USER_ID))
    keys.extend(existing_alternatives)
    return keys


def _events_group_limited(
    events: Sequence[Event],
    identifiers: dict[int, EventIdentifiers],
    owners: dict[Key, int],
    profiles: dict[int, Profile],
    rules: MatchRules,
    groups: _Groups,
    event_root_key: dict[int, Key],
) -> list[tuple[object, object]]:
    """Group events and keys as Segment's identity resolution settings say, event by event.

    Each event's identifiers are taken in priority order (`kind_priority`; kinds not listed
    come last). The first one anchors the event: its profile, or a new one. Each next
    identifier joins the anchor's group (attaching a new key, or merging the profile that owns
    it) only if the group then keeps within every per-kind limit; otherwise it is left out and,
    when another profile owns it, the two groups are returned as a conflict for staff to
    decide. Fills `groups` and `event_root_key`; returns the conflicts (nodes of both groups).
    """
    rank = {kind: number for number, kind in enumerate(rules.priority)}
    limits = rules.limits
    # Per group root: the values it holds of each limited kind.
    held: dict[object, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    survivors = {profile.pk for profile in profiles.values()}
    for pid, kind, value in Identity.objects.filter(
        profile_id__in=survivors, kind__in=list(limits)
    ).values_list("profile_id", "kind", "value"):
        held[groups.find(("profile", pid))][kind].add(value)
    for key, pid in owners.items():
        _union_held(groups, held, ("profile", profiles[pid].pk), key)

    def fits(root: object, other: dict[str, set[str]]) -> bool:
        mine = held.get(root, {})
        return all(
            len(mine.get(kind, set()) | other.get(kind, set())) <= limit
            for kind, limit in limits.items()
        )

    conflicts: list[tuple[object, object]] = []
    placed = set(owners)
    dropped = 0
    for event in events:
        keys = sorted(
            _event_keys(identifiers[event.pk], owners),
            key=lambda k: rank.get(k[0], len(rank)),
        )
        if not keys:
            continue
        anchor = keys[0]
        event_root_key[event.pk] = anchor
        if anchor not in placed:
            placed.add(anchor)
            if anchor[0] in limits:
                held[groups.find(anchor)][anchor[0]].add(anchor[1])
        for key in keys[1:]:
            root = groups.find(anchor)
            if key in placed:
                other = groups.find(key)
                if other == root:
                    continue
                if fits(root, held.get(other, {})):
                    _union_held(groups, held, anchor, key)
                else:
                    conflicts.append((anchor, key))
            elif key[0] not in limits or fits(root, {key[0]: {key[1]}}):
                placed.add(key)
                _union_held(groups, held, anchor, key)
                if key[0] in limits:
                    held[groups.find(anchor)][key[0]].add(key[1])
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
        existing = sorted(group_profiles.get(root, {}).values(), key=_oldest_first)
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
    identifiers = {event.pk: rules.allowed(_event_identifiers(event)) for event in events}
    all_keys = {key for found in identifiers.values() for key in found.all_keys()}
    identity_keys_lock(keys=all_keys)
    owners = identities_owners(keys=all_keys)
    profiles = _profiles_lock(owners.values())

    groups = _Groups()
    event_root_key: dict[int, Key] = {}
    conflicts: list[tuple[object, object]] = []
    if rules.limits:
        conflicts = _events_group_limited(
            events, identifiers, owners, profiles, rules, groups, event_root_key
        )
    else:  # everything an event carries joins one group
        for event in events:
            keys = _event_keys(identifiers[event.pk], owners)
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

    new_identities = [
        Identity(kind=kind, value=value, profile=group_profile[root])
        for root, keys in group_keys.items()
        for kind, value in sorted(keys)
        if (kind, value) not in owners and groups.find((kind, value)) == root
    ]
    Identity.objects.bulk_create(new_identities)
    for first, second in conflicts:
        _candidate_for_conflict(
            groups.find(first), groups.find(second), group_profile, group_profiles
        )

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
    candidate: MatchCandidate | None = None,
) -> Profile:
    """Merge `duplicate` into `survivor`: one person found under two profiles.

    Moves the duplicate's identities and events to the survivor, merges traits (by the
    settings' strategy: the most recently set value of each trait wins, or the survivor's),
    combines computed features and recounts sessions, runs the merge hooks (consent, segment
    memberships, ...), then leaves the duplicate's row in place, empty, with
    `merged_into=survivor`. A `MergeRecord` keeps both profiles as they were and what moved,
    for `profile_unmerge`. Locks both rows (in id order). `actor` is the staff user who asked
    for it (None for automatic merges). Returns the survivor; the record is
    `survivor.merge_record`.
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
    if survivor.merged_into_id is not None:
        raise ValueError(f"profile {survivor.pk} was already merged into another")
    (record,) = _merges_apply([_Merge(survivor, duplicate, reason, candidate)], actor=actor)
    survivor.merge_record = record  # type: ignore[attr-defined]
    return survivor


@dataclass
class PlannedMerge:
    survivor_id: int
    duplicate_id: int
    reason: str = ""
    candidate: MatchCandidate | None = None


@transaction.atomic
def profiles_merge_batch(*, merges: Sequence[PlannedMerge]) -> list[MergeRecord]:
    """Automatic merges of many pairs at once, each exactly as `profile_merge` does it (one
    `MergeRecord` each, unmerge works the same), in a fixed number of statements per batch.

    No profile may appear in two merges of one batch (a survivor taking several duplicates
    does so over several batches). Pairs of which a profile was merged away meanwhile are
    skipped. Returns the records of the merges done.
    """
    ids = [pk for merge in merges for pk in (merge.survivor_id, merge.duplicate_id)]
    if len(ids) != len(set(ids)):
        raise ValueError("a profile appears in two merges of one batch")
    locked = {
        p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    todo = []
    for merge in merges:
        survivor, duplicate = locked.get(merge.survivor_id), locked.get(merge.duplicate_id)
        if survivor is None or duplicate is None:
            continue  # erased meanwhile
        if survivor.merged_into_id is None and duplicate.merged_into_id is None:
            todo.append(_Merge(survivor, duplicate, merge.reason, merge.candidate))
    return _merges_apply(todo, actor=None)


@dataclass
class _Merge:
    survivor: Profile
    duplicate: Profile
    reason: str
    candidate: MatchCandidate | None


def _merges_apply(merges: Sequence[_Merge], *, actor: AbstractBaseUser | None) -> list[MergeRecord]:
    """The merge itself, for profiles already locked, fresh and checked, none in two merges."""
    if not merges:
        return []
    moves = {merge.duplicate.pk: merge.survivor.pk for merge in merges}
    moved: dict[str, dict[int, list[int]]] = {"identities": {}, "events": {}, "profiles": {}}
    for name, rows in (
        (
            "identities",
            Identity.objects.filter(profile_id__in=list(moves)).values_list("profile_id", "pk"),
        ),
        (
            "events",
            Event.objects.filter(profile_id__in=list(moves)).values_list("profile_id", "pk"),
        ),
        (
            "profiles",
            Profile.objects.filter(merged_into_id__in=list(moves)).values_list(
                "merged_into_id", "pk"
            ),
        ),
    ):
        for owner, pk in rows.order_by("pk").iterator(chunk_size=10000):
            moved[name].setdefault(owner, []).append(pk)
    last_event_id = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    records = []
    for merge in merges:
        survivor, duplicate = merge.survivor, merge.duplicate
        records.append(
            MergeRecord(
                survivor=survivor,
                duplicate=duplicate,
                actor=actor if getattr(actor, "pk", None) else None,
                reason=merge.reason[:200],
                candidate=merge.candidate,
                survivor_before=profile_snapshot(survivor),
                duplicate_before=profile_snapshot(duplicate),
                moved_identities=moved["identities"].get(duplicate.pk, []),
                moved_events=moved["events"].get(duplicate.pk, []),
                moved_profiles=moved["profiles"].get(duplicate.pk, []),
                last_event_id=last_event_id,
            )
        )
    strategy = match_settings().trait_strategy
    own_traits = {
        m.survivor.pk: (dict(m.survivor.traits), dict(m.survivor.trait_timestamps)) for m in merges
    }
    pairs = [(merge.survivor, merge.duplicate) for merge in merges]

    rows_update_from_map(model=Identity, key="profile_id", column="profile_id", mapping=moves)
    profiles_absorb(pairs=pairs)
    if strategy == MatchSettings.TraitStrategy.SURVIVOR:
        for survivor, _ in pairs:
            traits, stamps = own_traits[survivor.pk]
            survivor.traits = {**survivor.traits, **traits}
            survivor.trait_timestamps = {**survivor.trait_timestamps, **stamps}
        profiles_save(profiles=[survivor for survivor, _ in pairs])
    for record, (survivor, _) in zip(records, pairs, strict=True):
        mine = own_traits[survivor.pk][0]
        record.trait_sources = {
            name: "survivor" if mine.get(name, _MISSING) == value else "duplicate"
            for name, value in survivor.traits.items()
        }
        record.hooks = {}
    for hook in merge_hooks():
        for record, state in zip(records, hook_merge_states(hook, pairs), strict=True):
            record.hooks[hook.name] = state
    MergeRecord.objects.bulk_create(records)
    MatchCandidate.objects.filter(
        Q(profile_a_id__in=list(moves)) | Q(profile_b_id__in=list(moves)),
        status=CandidateStatus.PENDING,
    ).exclude(pk__in=[m.candidate.pk for m in merges if m.candidate is not None]).update(
        status=CandidateStatus.STALE
    )
    for merge in merges:
        logger.info(
            "merged profile %s into %s (%s)%s",
            merge.duplicate.pk,
            merge.survivor.pk,
            merge.reason or "no reason given",
            f" by user {actor.pk}" if actor is not None else "",
        )
    return records


_MISSING = object()

_SNAPSHOT_FIELDS = ("traits", "trait_timestamps", "context", *COMPUTED_FIELDS)


def profile_snapshot(profile: Profile) -> dict[str, Any]:
    """The merge-relevant state of a profile as JSON (datetimes ISO, revenue as text)."""
    out: dict[str, Any] = {}
    for name in _SNAPSHOT_FIELDS:
        value = getattr(profile, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, dict):
            value = json.loads(json.dumps(value, cls=DjangoJSONEncoder))
        out[name] = value
    return out


def _snapshot_restore(profile: Profile, snapshot: dict[str, Any]) -> None:
    for name in _SNAPSHOT_FIELDS:
        value = snapshot.get(name)
        field = Profile._meta.get_field(name)
        if isinstance(field, models.DateTimeField):
            value = parse_datetime(value) if value else None
        elif isinstance(field, models.DecimalField):
            value = Decimal(value or 0)
        elif isinstance(field, models.JSONField):
            value = value or {}
        setattr(profile, name, value)


def survivor_order(rule: str) -> Callable[[Profile], tuple[Any, ...]]:
    """Sort key putting the survivor first, by a `MatchSettings.SurvivorRule`."""
    if rule == MatchSettings.SurvivorRule.MOST_EVENTS:
        return lambda p: (-p.event_count, p.pk)
    return _oldest_first


def merge_survivor_choose(*, first: Profile, second: Profile) -> tuple[Profile, Profile]:
    """(survivor, duplicate) by the settings' rule: oldest first seen, or most events."""
    ordered = sorted((first, second), key=survivor_order(match_settings().survivor_rule))
    return ordered[0], ordered[1]


def profiles_merge(
    *,
    first: Profile,
    second: Profile,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
    candidate: MatchCandidate | None = None,
) -> MergeRecord:
    """Merge two profiles, the survivor chosen by rule; both are followed to their current
    survivors first. Raises ValueError when they are already one profile."""
    first, second = profile_current(profile=first), profile_current(profile=second)
    if first.pk == second.pk:
        raise ValueError("these profiles are already one")
    survivor, duplicate = merge_survivor_choose(first=first, second=second)
    merged = profile_merge(
        survivor=survivor, duplicate=duplicate, actor=actor, reason=reason, candidate=candidate
    )
    return merged.merge_record  # type: ignore[attr-defined]


@transaction.atomic
def profile_unmerge(*, merge_record: MergeRecord, actor: AbstractBaseUser | None) -> MergeRecord:
    """Undo a merge: both profiles back as they were, plus whatever arrived since.

    What moved (identities, events, profiles merged earlier into the duplicate) moves back;
    events that arrived since go to the duplicate when they carry one of its identifiers, with
    the identities they created; both profiles are rebuilt from their snapshots plus those
    events; then the merge hooks restore their rows. The pair is then recorded as "not the same
    person", so the matcher does not merge it again. Refused (ValueError) when already undone
    or when the survivor has since been merged into another profile (undo that first).
    """
    record = MergeRecord.objects.select_for_update().get(pk=merge_record.pk)
    if record.unmerged_at is not None:
        raise ValueError("this merge was already undone")
    ids = sorted([record.survivor_id, record.duplicate_id])
    locked = {
        p.pk: p for p in Profile.objects.select_for_update().filter(pk__in=ids).order_by("pk")
    }
    survivor, duplicate = locked[record.survivor_id], locked[record.duplicate_id]
    if survivor.merged_into_id is not None:
        raise ValueError(
            f"profile {survivor.pk} was merged into {survivor.merged_into_id} since: "
            "undo that first"
        )
    if duplicate.merged_into_id != survivor.pk:
        raise ValueError(f"profile {duplicate.pk} is no longer merged into {survivor.pk}")

    Identity.objects.filter(pk__in=record.moved_identities, profile=survivor).update(
        profile=duplicate
    )
    Event.objects.filter(pk__in=record.moved_events, profile=survivor).update(profile=duplicate)
    Profile.objects.filter(pk__in=record.moved_profiles, merged_into=survivor).update(
        merged_into=duplicate
    )
    # Since the merge: attributed by identifier.
    duplicate_keys = set(Identity.objects.filter(profile=duplicate).values_list("kind", "value"))
    since = list(
        Event.objects.filter(profile=survivor, pk__gt=record.last_event_id).order_by(
            "timestamp", "pk"
        )
    )
    to_duplicate, to_survivor = [], []
    new_keys: set[Key] = set()
    for event in since:
        keys = set(_event_identifiers(event).all_keys())
        if keys & duplicate_keys:
            to_duplicate.append(event)
            new_keys |= keys
        else:
            to_survivor.append(event)
    Event.objects.filter(pk__in=[e.pk for e in to_duplicate]).update(profile=duplicate)
    for kind, value in new_keys - duplicate_keys:
        Identity.objects.filter(
            kind=kind, value=value, profile=survivor, created_at__gt=record.created_at
        ).update(profile=duplicate)

    _snapshot_restore(survivor, record.survivor_before)
    _snapshot_restore(duplicate, record.duplicate_before)
    duplicate.merged_into = None
    late = [
        profile
        for profile, events in ((survivor, to_survivor), (duplicate, to_duplicate))
        if events and profile_apply_events(profile=profile, events=events)
    ]
    profiles_sessions_recount(profiles=late)
    profiles_save(profiles=[survivor, duplicate])
    Profile.objects.filter(pk=duplicate.pk).update(merged_into=None)
    # Hooks see both profiles rebuilt (segment membership is evaluated on them).
    for hook in reversed(merge_hooks()):
        if hook.unmerge is not None and hook.name in record.hooks:
            hook.unmerge(survivor=survivor, duplicate=duplicate, state=record.hooks[hook.name])

    record.unmerged_at = timezone.now()
    record.unmerged_by = actor if getattr(actor, "pk", None) else None
    record.save(update_fields=["unmerged_at", "unmerged_by"])
    a, b = sorted([survivor.pk, duplicate.pk])
    NotSamePerson.objects.get_or_create(
        profile_a_id=a, profile_b_id=b, defaults={"decided_by": record.unmerged_by}
    )
    MatchCandidate.objects.filter(profile_a_id=a, profile_b_id=b).update(
        status=CandidateStatus.REJECTED
    )
    logger.info("unmerged profile %s from %s", duplicate.pk, survivor.pk)
    return record


# --- Review decisions and settings ------------------------------------------------------------


class DecisionError(ValueError):
    """A decision that cannot be taken (already decided, profiles gone)."""


@transaction.atomic
def candidate_decide(
    *, candidate: MatchCandidate, merge: bool, actor: AbstractBaseUser | None
) -> MergeRecord | None:
    """Staff decision on a suggested pair: merge them (returns the merge record), or record
    that they are not the same person (never suggested again)."""
    candidate = MatchCandidate.objects.select_for_update().get(pk=candidate.pk)
    if candidate.status != CandidateStatus.PENDING:
        raise DecisionError(f"this suggestion was already decided ({candidate.status})")
    who = actor if getattr(actor, "pk", None) else None
    record = None
    if merge:
        try:
            record = profiles_merge(
                first=candidate.profile_a,
                second=candidate.profile_b,
                actor=actor,
                reason=f"review: {candidate.get_reason_display()}",
                candidate=candidate,
            )
        except ValueError as error:
            raise DecisionError(str(error)) from error
        candidate.status = CandidateStatus.MERGED
    else:
        NotSamePerson.objects.get_or_create(
            profile_a_id=candidate.profile_a_id,
            profile_b_id=candidate.profile_b_id,
            defaults={"decided_by": who},
        )
        candidate.status = CandidateStatus.REJECTED
    candidate.decided_by = who
    candidate.decided_at = timezone.now()
    candidate.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
    return record


def candidates_decide(
    *, candidates: Sequence[MatchCandidate], merge: bool, actor: AbstractBaseUser | None
) -> tuple[int, list[str]]:
    """Bulk decision; returns (how many were decided, why the others were not)."""
    done, problems = 0, []
    for candidate in candidates:
        try:
            candidate_decide(candidate=candidate, merge=merge, actor=actor)
            done += 1
        except DecisionError as error:
            problems.append(f"suggestion {candidate.pk}: {error}")
    return done, problems


def match_settings_update(*, actor: AbstractBaseUser | None, **values: Any) -> MatchSettings:
    """Validate and save identity-resolution settings; ValueError {field: message} if bad."""
    from identity.schemas import settings_validate

    cleaned = settings_validate(values)
    settings = match_settings()
    for name, value in cleaned.items():
        setattr(settings, name, value)
    if "fields" in cleaned:
        settings.model = {}  # a different field set needs a new model
    settings.updated_by = actor if getattr(actor, "pk", None) else None
    settings.save()
    return settings
