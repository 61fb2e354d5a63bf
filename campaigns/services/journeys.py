"""The journey engine: people enter campaigns (event and segment triggers from the pipeline,
broadcasts from beat), then walk the steps of the version they entered.

Nothing sleeps. A wait stores when the next step is due (`Entry.due_at`); the entry's steps run
when a task asks for it right after entry, and afterwards whenever a worker claims due entries
(`entries_due_advance`, from beat, with `select_for_update(skip_locked=True)` so workers never
take the same entry). A send step records a `Delivery` in the same transaction that moves the
entry on, and its sending is queued after commit (campaigns.services.delivery). So a restart of
every worker loses no wait and sends nothing twice: what was committed is picked up again, and
a delivery exists once per (version, step, person, entry).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from campaigns import definition as steps_language
from campaigns import selectors
from campaigns.models import Campaign, CampaignVersion, Delivery, Entry
from campaigns.queue import task_queue
from campaigns.services import experiments
from campaigns.services.delivery import SEND_BATCH, deliveries_queue, deliveries_send
from profiles.models import Event, Profile
from segments import conditions
from segments.selectors import definition_resolver, profile_facts, segment_get, segment_members
from segments.services import MembershipTransition

logger = logging.getLogger(__name__)

ADVANCE_BATCH = 500
BROADCAST_BATCH = 1000


@dataclass(frozen=True)
class _Candidate:
    live: selectors.LiveCampaign
    profile_id: int
    at: dt.datetime  # when the trigger happened (the goal window starts here)
    trigger: dict[str, Any]


# --- entering --------------------------------------------------------------------------------


def campaign_triggers_fire(
    *,
    resolved: Sequence[tuple[Profile, Sequence[Event]]],
    changes: Sequence[MembershipTransition],
    now: dt.datetime | None = None,
) -> list[Entry]:
    """Pipeline stage, once per chunk after segments: goal events end the journeys they
    complete; trigger events and segment enters/exits start new ones (as the entry policy
    allows). Returns the new entries, whose first steps are queued to run after commit."""
    live = selectors.campaigns_live()
    if not live:
        return []
    now = now or timezone.now()
    # Entries of other campaigns (paused, or whose live version has no goal) check their goal
    # when they next advance (_entry_advance).
    with_goal = [live_one.campaign.pk for live_one in live if live_one.definition.get("goal")]
    if with_goal:
        _goals_reach(resolved, now, campaign_ids=with_goal)
    candidates: list[_Candidate] = []
    for campaign in live:
        trigger = campaign.definition["trigger"]
        if "event" in trigger:
            for profile, events in resolved:
                candidates += [
                    _Candidate(
                        campaign,
                        profile.pk,
                        event.timestamp,
                        {"event": event.event, "properties": event.properties or {}},
                    )
                    for event in events
                    if _event_matches(trigger, event, now)
                ]
        elif "segment" in trigger:
            entering = trigger.get("on", "enter") == "enter"
            candidates += [
                _Candidate(campaign, change.profile_id, now, dict(trigger))
                for change in changes
                if change.segment_id == trigger["segment"] and change.entered == entering
            ]
    return _entries_create(candidates, now)


def _event_matches(node: Mapping[str, Any], event: Event, now: dt.datetime) -> bool:
    return steps_language.occurrence_matches(
        node, event.event, event.timestamp, event.properties, now
    )


def _entries_create(candidates: list[_Candidate], now: dt.datetime) -> list[Entry]:
    """Entries for the candidates the entry policy admits, numbered per person and campaign."""
    if not candidates:
        return []
    campaign_ids = {c.live.campaign.pk for c in candidates}
    profile_ids = {c.profile_id for c in candidates}
    previous: dict[tuple[int, int], tuple[int, dt.datetime]] = {
        (row["campaign_id"], row["profile_id"]): (row["number"], row["entered"])
        for row in Entry.objects.filter(campaign_id__in=campaign_ids, profile_id__in=profile_ids)
        .values("campaign_id", "profile_id")
        .annotate(number=Max("number"), entered=Max("entered_at"))
    }
    entries: list[Entry] = []
    for candidate in sorted(candidates, key=lambda c: (c.at, c.profile_id)):
        definition = candidate.live.definition
        key = (candidate.live.campaign.pk, candidate.profile_id)
        if key in previous and not _policy_admits(
            definition.get("entry", "once"), previous[key], now
        ):
            continue
        number = previous[key][0] + 1 if key in previous else 1
        previous[key] = (number, now)
        goal = definition.get("goal")
        entries.append(
            Entry(
                campaign=candidate.live.campaign,
                version=candidate.live.version,
                profile_id=candidate.profile_id,
                number=number,
                step_path=[0],
                due_at=now,
                trigger=candidate.trigger,
                entered_at=now,
                goal_until=candidate.at + steps_language.duration(goal["within"]) if goal else None,
            )
        )
    created = Entry.objects.bulk_create(entries)
    if created:
        task_queue("entries_advance_task", [entry.pk for entry in created])
    return created


def _policy_admits(policy: Any, previous: tuple[int, dt.datetime], now: dt.datetime) -> bool:
    if policy == "every_time":
        return True
    if isinstance(policy, dict):
        return now - previous[1] >= steps_language.duration(policy["once_per"])
    return False  # "once"


# --- goals -----------------------------------------------------------------------------------


def _goal_window(entry: Entry, goal: Mapping[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    assert entry.goal_until is not None
    return entry.goal_until - steps_language.duration(goal["within"]), entry.goal_until


def _goals_reach(
    resolved: Sequence[tuple[Profile, Sequence[Event]]],
    now: dt.datetime,
    *,
    campaign_ids: Sequence[int],
) -> None:
    """Active entries of these people in these campaigns (the live ones with a goal) whose goal
    one of these events reaches exit (one query)."""
    events_of = {profile.pk: events for profile, events in resolved if events}
    if not events_of:
        return
    entries = Entry.objects.filter(
        status=Entry.Status.ACTIVE,
        goal_until__isnull=False,
        campaign_id__in=campaign_ids,
        profile_id__in=list(events_of),
    ).select_related("version")
    for entry in entries:
        goal = entry.version.definition.get("goal")
        if not goal:
            continue
        start, end = _goal_window(entry, goal)
        reached = [
            event.timestamp
            for event in events_of[entry.profile_id]
            if start <= event.timestamp <= end and _event_matches(goal, event, now)
        ]
        if reached:
            _entry_exit(entry, Entry.ExitReason.GOAL, now, converted_at=min(reached))


class _GoalEvents:
    """The goal events of a batch of entries, read in one query: for each entry whose
    version has a goal, its person's events of the goal's name inside the batch's widest
    window, matched per entry against its own window and filters."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.by_profile: dict[int, list[tuple[str, dt.datetime, Any]]] = {}
        goals = [
            (entry, entry.version.definition["goal"])
            for entry in entries
            if entry.goal_until is not None and entry.version.definition.get("goal")
        ]
        if not goals:
            return
        windows = [_goal_window(entry, goal) for entry, goal in goals]
        rows = (
            Event.objects.filter(
                profile_id__in={entry.profile_id for entry, _ in goals},
                event__in={goal["event"] for _, goal in goals},
                timestamp__gte=min(start for start, _ in windows),
                timestamp__lte=max(end for _, end in windows),
            )
            .order_by("timestamp")
            .values_list("profile_id", "event", "timestamp", "properties")
        )
        for profile_id, name, timestamp, properties in rows:
            self.by_profile.setdefault(profile_id, []).append((name, timestamp, properties))

    def reached(self, entry: Entry, now: dt.datetime) -> dt.datetime | None:
        """When this entry's goal event happened, or None."""
        goal = entry.version.definition.get("goal")
        if not goal or entry.goal_until is None:
            return None
        start, end = _goal_window(entry, goal)
        for name, timestamp, properties in self.by_profile.get(entry.profile_id, ()):
            if start <= timestamp <= end and steps_language.occurrence_matches(
                goal, name, timestamp, properties, now
            ):
                return timestamp
        return None


def _entry_exit(
    entry: Entry, reason: str, now: dt.datetime, *, converted_at: dt.datetime | None = None
) -> None:
    entry.status = Entry.Status.EXITED
    entry.exit_reason = reason
    entry.finished_at = now
    entry.due_at = None
    entry.converted_at = converted_at
    entry.save(update_fields=["status", "exit_reason", "finished_at", "due_at", "converted_at"])


# --- walking the steps -----------------------------------------------------------------------


def entries_advance(*, entry_ids: Sequence[int], now: dt.datetime | None = None) -> int:
    """Run the due steps of these entries (those another worker holds are left to it); the
    deliveries they record are queued for sending after commit. Returns how many entries
    moved."""
    now = now or timezone.now()
    with transaction.atomic():
        entries = _entries_claim(entry_ids, now)
        deliveries_queue(delivery_ids=_entries_walk(entries, now))
    return len(entries)


def entries_advance_send(
    *, entry_ids: Sequence[int], now: dt.datetime | None = None
) -> list[Delivery]:
    """What the task queued when people enter does: run these entries' due steps, as
    entries_advance, then send their queued deliveries in this task rather than queue them
    for another (one trip through the queue less between the trigger and the message). The
    deliveries are committed before any is sent, and those an earlier run of this task
    recorded but did not send (it stopped) are sent too, so a retry sends what is missing
    and nothing twice. A SEND_BATCH is sent here, the rest queued. Returns the deliveries
    this call claimed (deliveries_send)."""
    now = now or timezone.now()
    with transaction.atomic():
        _entries_walk(_entries_claim(entry_ids, now), now)
    queued = selectors.deliveries_queued_of(entry_ids=entry_ids)
    deliveries_queue(delivery_ids=queued[SEND_BATCH:])
    return deliveries_send(delivery_ids=queued[:SEND_BATCH], now=now)


def _entries_claim(entry_ids: Sequence[int], now: dt.datetime) -> list[Entry]:
    """Lock these entries that are active and due in an active campaign (skipping those
    another worker holds)."""
    entries = list(
        Entry.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            pk__in=list(entry_ids),
            status=Entry.Status.ACTIVE,
            due_at__lte=now,
            campaign__status=Campaign.Status.ACTIVE,
        )
        .select_related("profile")
        .order_by("pk")
    )
    selectors.campaign_rows_attach(entries)
    return entries


def entries_due_advance(*, now: dt.datetime | None = None, batch: int = ADVANCE_BATCH) -> int:
    """Beat: claim entries whose next step is due and run it; a full batch queues the next."""
    now = now or timezone.now()
    with transaction.atomic():
        entries = list(
            Entry.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(
                status=Entry.Status.ACTIVE,
                due_at__lte=now,
                campaign__status=Campaign.Status.ACTIVE,
            )
            .select_related("profile")
            .order_by("due_at", "pk")[:batch]
        )
        selectors.campaign_rows_attach(entries)
        deliveries_queue(delivery_ids=_entries_walk(entries, now))
    if len(entries) == batch:
        task_queue("entries_due_task")
    return len(entries)


@dataclass(frozen=True)
class _Send:
    entry: Entry
    step: str  # the send step's JSON pointer
    channel_id: int


def _entries_walk(entries: Sequence[Entry], now: dt.datetime) -> list[int]:
    """Advance these locked entries; their goal events are read once for all of them and
    their deliveries recorded together. Returns the new deliveries' ids."""
    goals = _GoalEvents(entries)
    sends: list[_Send] = []
    moved = [entry for entry in entries if _entry_advance(entry, now, goals, sends)]
    _entries_moved_save(moved)
    return _deliveries_record(sends)


def _entries_moved_save(entries: Sequence[Entry]) -> None:
    """Write where these entries stand, one UPDATE per distinct state: a pass leaves a batch
    in a few (completed now, or waiting until the same time), so a batch costs a few
    statements rather than one per entry."""
    groups: dict[tuple[Any, ...], list[Entry]] = {}
    for entry in entries:
        state = (entry.status, entry.finished_at, entry.due_at, json.dumps(entry.step_path))
        groups.setdefault(state, []).append(entry)
    for group in groups.values():
        first = group[0]
        Entry.objects.filter(pk__in=[entry.pk for entry in group]).update(
            status=first.status,
            finished_at=first.finished_at,
            due_at=first.due_at,
            step_path=first.step_path,
        )


def _entry_advance(entry: Entry, now: dt.datetime, goals: _GoalEvents, sends: list[_Send]) -> bool:
    """Run this (locked) entry's steps until a wait that is not over, or the end; its send
    steps are added to `sends`. Returns whether the entry moved on and is still to be written
    (one that reached its goal is written as it exits)."""
    converted_at = goals.reached(entry, now)
    if converted_at is not None:
        _entry_exit(entry, Entry.ExitReason.GOAL, now, converted_at=converted_at)
        return False
    steps = entry.version.definition["steps"]
    path = steps_language.path_settle(steps, entry.step_path) if entry.step_path else None
    entry.due_at = None
    branching: _Branching | None = None
    # Every step runs at most once per pass, so a pass ends after as many steps as exist.
    for _ in range(steps_language.MAX_STEPS + 1):
        if path is None:
            entry.status = Entry.Status.COMPLETED
            entry.finished_at = now
            break
        step = steps_language.step_at(steps, path)
        if "wait" in step:
            due = steps_language.wait_until(
                step["wait"],
                now,
                steps_language.recipient_zone(entry.profile.context, settings.CAMPAIGN_TIMEZONE),
            )
            path = steps_language.path_next(steps, path)
            if due > now:
                entry.due_at = due
                break
        elif "branch" in step:
            # Read once per pass, at the first branch: nothing in a pass changes the facts.
            branching = branching or _Branching(profile_facts(profile=entry.profile))
            arm = "then" if branching.holds(step["branch"]["if"], now) else "else"
            path = steps_language.path_into(steps, path, arm)
        else:
            sends.append(_Send(entry, steps_language.step_pointer(path), step["send"]["channel"]))
            path = steps_language.path_next(steps, path)
    entry.step_path = path or []
    return True


class _Branching:
    """One person's facts and the segment definitions branch conditions name, loaded once."""

    def __init__(self, facts: Any) -> None:
        self.facts = facts
        self.segments = definition_resolver()

    def holds(self, condition: Mapping[str, Any], now: dt.datetime) -> bool:
        return conditions.evaluate(condition, self.facts, now=now, segments=self.segments)


def _deliveries_record(sends: Sequence[_Send]) -> list[int]:
    """One Delivery per (version, step, person, entry), written in bulk before anything is
    sent; those already recorded (a pass that ran before) are not written again. Returns
    the new ones' ids."""
    if not sends:
        return []
    recorded = set(
        Delivery.objects.filter(entry_id__in={send.entry.pk for send in sends}).values_list(
            "entry_id", "step"
        )
    )
    created = Delivery.objects.bulk_create(
        _delivery_new(send) for send in sends if (send.entry.pk, send.step) not in recorded
    )
    return [delivery.pk for delivery in created]


def _delivery_new(send: _Send) -> Delivery:
    # The person's variant or control group, chosen once per campaign and kept.
    arm = experiments.arm_assign(entry=send.entry)
    return Delivery(
        campaign=send.entry.campaign,
        version=send.entry.version,
        step=send.step,
        profile_id=send.entry.profile_id,
        entry=send.entry,
        channel_id=send.channel_id,
        variant=arm.variant,
        is_control=arm.is_control,
    )


def campaign_entries_exit(*, campaign: Campaign, reason: str, now: dt.datetime) -> int:
    """Every active entry of the campaign exits (the campaign was archived)."""
    return Entry.objects.filter(campaign=campaign, status=Entry.Status.ACTIVE).update(
        status=Entry.Status.EXITED, exit_reason=reason, finished_at=now, due_at=None
    )


# --- broadcasts ------------------------------------------------------------------------------


def broadcasts_due(*, now: dt.datetime | None = None) -> int:
    """Beat: queue a batch for every active broadcast whose time has come and is not done."""
    now = now or timezone.now()
    queued = 0
    for live in selectors.campaigns_live():
        trigger = live.definition["trigger"]
        if "broadcast" not in trigger or live.campaign.broadcast_finished_at is not None:
            continue
        at = steps_language.broadcast_time(live.definition)
        if at is not None and at <= now:
            task_queue("broadcast_batch_task", live.campaign.pk)
            queued += 1
    return queued


def broadcast_batch(
    *, campaign_id: int, now: dt.datetime | None = None, batch: int = BROADCAST_BATCH
) -> int:
    """Enter the next `batch` members of a broadcast's segment (by profile id, after the
    campaign's cursor); queue the next batch when this one was full. Returns how many were
    looked at. Runs twice harmlessly: the campaign row is locked and the cursor moves in the
    same transaction as the entries are written."""
    now = now or timezone.now()
    with transaction.atomic():
        # FOR NO KEY UPDATE: a batch running meanwhile holds it (skipped: that one goes on),
        # but not the key-share lock every transaction writing entries or deliveries of the
        # campaign takes on its row through their foreign keys. FOR UPDATE skipped those too,
        # and the chain of batches stopped while sends were being recorded (until beat).
        campaign = (
            Campaign.objects.select_for_update(skip_locked=True, no_key=True)
            .filter(
                pk=campaign_id, status=Campaign.Status.ACTIVE, broadcast_finished_at__isnull=True
            )
            .first()
        )
        if campaign is None:
            return 0
        version: CampaignVersion = selectors.campaign_version_current(campaign=campaign)
        trigger = version.definition["trigger"]
        at = steps_language.broadcast_time(version.definition) if "broadcast" in trigger else None
        if at is None or at > now:
            return 0
        segment = segment_get(segment_id=trigger["broadcast"]["segment"])
        ids: list[int] = []
        if segment is not None:
            members = segment_members(segment=segment).order_by("pk")
            if campaign.broadcast_cursor is not None:
                members = members.filter(pk__gt=campaign.broadcast_cursor)
            ids = list(members.values_list("pk", flat=True)[:batch])
        live = selectors.LiveCampaign(campaign, version)
        _entries_create([_Candidate(live, pk, now, dict(trigger)) for pk in ids], now)
        if ids:
            campaign.broadcast_cursor = ids[-1]
        if len(ids) < batch:
            campaign.broadcast_finished_at = now
        campaign.save(update_fields=["broadcast_cursor", "broadcast_finished_at", "updated_at"])
    if len(ids) == batch:
        task_queue("broadcast_batch_task", campaign_id)
    return len(ids)
