"""Profile merges (one, or many at once) and their undoing, with the survivor chosen by rule."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from access.services import audit_record
from consent.services import consents_merge, consents_unmerge
from identity.hooks import hook_merge_states, merge_hooks
from identity.models import (
    CandidateStatus,
    Identity,
    MatchCandidate,
    MatchSettings,
    MergeRecord,
    NotSamePerson,
)
from identity.selectors import match_settings, profile_current
from identity.services.keys import event_identifiers_of
from profiles.features import COMPUTED_FIELDS
from profiles.identifiers import Key
from profiles.models import Event, Profile
from profiles.services import (
    profile_apply_events,
    profiles_absorb,
    profiles_save,
    profiles_sessions_recount,
    rows_update_from_map,
)

logger = logging.getLogger(__name__)

CONSENT_STATE = "consent"


@transaction.atomic
def profile_merge(
    *,
    survivor: Profile,
    duplicate: Profile,
    actor: User | None = None,
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


def _merges_apply(merges: Sequence[_Merge], *, actor: User | None) -> list[MergeRecord]:
    """The merge itself, for profiles already locked, fresh and checked, none in two merges."""
    if not merges:
        return []
    moves = {merge.duplicate.pk: merge.survivor.pk for merge in merges}
    records = _merge_records_build(merges, _rows_moved(moves), actor=actor)
    strategy = match_settings().trait_strategy
    own_traits = {
        m.survivor.pk: (dict(m.survivor.traits), dict(m.survivor.trait_timestamps)) for m in merges
    }
    pairs = [(merge.survivor, merge.duplicate) for merge in merges]

    rows_update_from_map(model=Identity, key="profile_id", column="profile_id", mapping=moves)
    profiles_absorb(pairs=pairs)
    if strategy == MatchSettings.TraitStrategy.SURVIVOR:
        _survivor_traits_keep(pairs, own_traits)
    _trait_sources_record(records, pairs, own_traits)
    _merge_hooks_run(records, pairs)
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


def _rows_moved(moves: dict[int, int]) -> dict[str, dict[int, list[int]]]:
    """What the merges will move, per duplicate: {"identities"|"events"|"profiles": {duplicate
    id: row ids}} (the profiles are those merged earlier into the duplicate)."""
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
    return moved


def _merge_records_build(
    merges: Sequence[_Merge],
    moved: dict[str, dict[int, list[int]]],
    *,
    actor: User | None,
) -> list[MergeRecord]:
    """One unsaved record per merge: both profiles as they are now and what will move."""
    last_event_id = Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    return [
        MergeRecord(
            survivor=merge.survivor,
            duplicate=merge.duplicate,
            actor=actor if getattr(actor, "pk", None) else None,
            reason=merge.reason[:200],
            candidate=merge.candidate,
            survivor_before=profile_snapshot(merge.survivor),
            duplicate_before=profile_snapshot(merge.duplicate),
            moved_identities=moved["identities"].get(merge.duplicate.pk, []),
            moved_events=moved["events"].get(merge.duplicate.pk, []),
            moved_profiles=moved["profiles"].get(merge.duplicate.pk, []),
            last_event_id=last_event_id,
        )
        for merge in merges
    ]


def _survivor_traits_keep(
    pairs: Sequence[tuple[Profile, Profile]],
    own_traits: dict[int, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """The "survivor" trait strategy: the survivor's own values win over the absorbed ones."""
    for survivor, _ in pairs:
        traits, stamps = own_traits[survivor.pk]
        survivor.traits = {**survivor.traits, **traits}
        survivor.trait_timestamps = {**survivor.trait_timestamps, **stamps}
    profiles_save(profiles=[survivor for survivor, _ in pairs])


def _trait_sources_record(
    records: Sequence[MergeRecord],
    pairs: Sequence[tuple[Profile, Profile]],
    own_traits: dict[int, tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """Note on each record which profile each of the merged traits came from."""
    for record, (survivor, _) in zip(records, pairs, strict=True):
        mine = own_traits[survivor.pk][0]
        record.trait_sources = {
            name: "survivor" if mine.get(name, _MISSING) == value else "duplicate"
            for name, value in survivor.traits.items()
        }


def _merge_hooks_run(
    records: Sequence[MergeRecord], pairs: Sequence[tuple[Profile, Profile]]
) -> None:
    """Merge consent, then run the registered hooks; each one's state goes on the records."""
    for record in records:
        record.hooks = {}
    # Consent's state is kept under "consent" in `hooks`, where merge records made while the
    # rule was a registered hook keep it too.
    for record, state in zip(records, consents_merge(pairs=pairs), strict=True):
        record.hooks[CONSENT_STATE] = state
    for hook in merge_hooks():
        for record, state in zip(records, hook_merge_states(hook, pairs), strict=True):
            record.hooks[hook.name] = state


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


class SurvivorCandidate(Protocol):
    """What the survivor rules read of a profile: a `Profile`, or the rescan's plan of one."""

    @property
    def pk(self) -> int: ...

    @property
    def first_seen(self) -> datetime | None: ...

    @property
    def event_count(self) -> int: ...


def oldest_first(profile: SurvivorCandidate) -> tuple[bool, datetime | None, int]:
    """Sort key putting the profile first seen earliest first (never seen last)."""
    return (profile.first_seen is None, profile.first_seen, profile.pk)


def survivor_order(rule: str) -> Callable[[SurvivorCandidate], tuple[Any, ...]]:
    """Sort key putting the survivor first, by a `MatchSettings.SurvivorRule`."""
    if rule == MatchSettings.SurvivorRule.MOST_EVENTS:
        return lambda p: (-p.event_count, p.pk)
    return oldest_first


def merge_survivor_choose(*, first: Profile, second: Profile) -> tuple[Profile, Profile]:
    """(survivor, duplicate) by the settings' rule: oldest first seen, or most events."""
    ordered = sorted((first, second), key=survivor_order(match_settings().survivor_rule))
    return ordered[0], ordered[1]


def profiles_merge(
    *,
    first: Profile,
    second: Profile,
    actor: User | None = None,
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
def profile_unmerge(*, merge_record: MergeRecord, actor: User | None) -> MergeRecord:
    """Undo a merge: both profiles back as they were, plus whatever arrived since.

    What moved (identities, events, profiles merged earlier into the duplicate) moves back;
    events that arrived since go to the duplicate when they carry one of its identifiers, with
    the identities they created; both profiles are rebuilt from their snapshots plus those
    events; then the merge hooks restore their rows. The pair is then recorded as "not the same
    person", so the matcher does not merge it again. Refused (ValueError) when already undone
    or when the survivor has since been merged into another profile (undo that first).
    """
    record, survivor, duplicate = _unmerge_lock(merge_record)
    Identity.objects.filter(pk__in=record.moved_identities, profile=survivor).update(
        profile=duplicate
    )
    Event.objects.filter(pk__in=record.moved_events, profile=survivor).update(profile=duplicate)
    Profile.objects.filter(pk__in=record.moved_profiles, merged_into=survivor).update(
        merged_into=duplicate
    )
    to_survivor, to_duplicate = _events_since_split(record, survivor, duplicate)
    _profiles_rebuild(record, (survivor, to_survivor), (duplicate, to_duplicate))
    # Hooks see both profiles rebuilt (segment membership is evaluated on them), in the
    # reverse of the merge's order: consent, applied first, is undone last.
    for hook in reversed(merge_hooks()):
        if hook.unmerge is not None and hook.name in record.hooks:
            hook.unmerge(survivor=survivor, duplicate=duplicate, state=record.hooks[hook.name])
    if CONSENT_STATE in record.hooks:
        consents_unmerge(survivor=survivor, duplicate=duplicate, state=record.hooks[CONSENT_STATE])
    _unmerge_record(record, survivor, duplicate, actor=actor)
    audit_record(
        actor=actor,
        action="identity.unmerge",
        resource="merges",
        resource_id=record.pk,
        profile_id=duplicate.pk,
        details={"survivor": survivor.pk, "duplicate": duplicate.pk},
    )
    logger.info("unmerged profile %s from %s", duplicate.pk, survivor.pk)
    return record


def _unmerge_lock(merge_record: MergeRecord) -> tuple[MergeRecord, Profile, Profile]:
    """Lock the record and both profiles (in id order): (record, survivor, duplicate), or
    ValueError when the merge cannot be undone now."""
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
    return record, survivor, duplicate


def _events_since_split(
    record: MergeRecord, survivor: Profile, duplicate: Profile
) -> tuple[list[Event], list[Event]]:
    """Events that arrived since the merge, attributed by identifier: those carrying one of
    the duplicate's go back to it, with the identities they created. Returns (the survivor's,
    the duplicate's), in event-time order."""
    duplicate_keys = set(Identity.objects.filter(profile=duplicate).values_list("kind", "value"))
    since = list(
        Event.objects.filter(profile=survivor, pk__gt=record.last_event_id).order_by(
            "timestamp", "pk"
        )
    )
    to_duplicate, to_survivor = [], []
    new_keys: set[Key] = set()
    for event in since:
        keys = set(event_identifiers_of(event=event).all_keys())
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
    return to_survivor, to_duplicate


def _profiles_rebuild(
    record: MergeRecord,
    survivor_side: tuple[Profile, list[Event]],
    duplicate_side: tuple[Profile, list[Event]],
) -> None:
    """Both profiles from their snapshots plus the events they got since, saved; the
    duplicate no longer merged."""
    survivor, duplicate = survivor_side[0], duplicate_side[0]
    _snapshot_restore(survivor, record.survivor_before)
    _snapshot_restore(duplicate, record.duplicate_before)
    duplicate.merged_into = None
    late = [
        profile
        for profile, events in (survivor_side, duplicate_side)
        if events and profile_apply_events(profile=profile, events=events)
    ]
    profiles_sessions_recount(profiles=late)
    profiles_save(profiles=[survivor, duplicate])
    Profile.objects.filter(pk=duplicate.pk).update(merged_into=None)


def _unmerge_record(
    record: MergeRecord, survivor: Profile, duplicate: Profile, *, actor: User | None
) -> None:
    """Mark the merge undone and the pair "not the same person"; its suggestion rejected."""
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
