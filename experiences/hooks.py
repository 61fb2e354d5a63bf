"""The experiences side of a profile merge, registered as an identity merge hook
(`identity.hooks`; see `ExperiencesConfig.ready`).

A person holds one arm per experience (their sticky `Decision`). When two profiles turn out to
be one person, the survivor takes the duplicate's decisions in the experiences it had none in.
Where both had one, the person keeps the earlier (what they saw first; the lower id on a tie),
and the other stays behind on the duplicate's merged-away profile: its id still ties the
impressions and clicks sent with it to the arm they showed (the results count those events,
and count the person once, in the arm kept; see experiences.selectors). When the duplicate's
decision is the earlier, the two change places. A merged person who is suppressed (under
either profile) keeps none. An unmerge puts every decision back on the profile it was taken
for; decisions taken since stay with the survivor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consent.selectors import profiles_suppressed
from experiences.models import Decision
from experiences.services import decisions_suppress
from identity.hooks import merge_hook_register
from profiles.models import Profile
from profiles.services import rows_update_from_map

HOOK_NAME = "experiences"


def decisions_merge_many(*, pairs: Sequence[tuple[Profile, Profile]]) -> list[dict[str, Any]]:
    """Merge each (survivor, duplicate) pair's decisions, in a fixed number of statements; one
    state per pair: {"moved": decisions moved to the survivor, "parked": the survivor's own
    decisions moved onto the duplicate because the duplicate's were earlier}."""
    # Consent merged first: a person suppressed under either profile is suppressed now, and
    # leaves no decisions (nothing for an unmerge to give back).
    suppressed = profiles_suppressed(profile_ids=[survivor.pk for survivor, _ in pairs])
    if suppressed:
        decisions_suppress(
            profile_ids=[p.pk for pair in pairs if pair[0].pk in suppressed for p in pair]
        )
    person_of = {duplicate.pk: survivor.pk for survivor, duplicate in pairs}
    duplicate_of = {survivor.pk: duplicate.pk for survivor, duplicate in pairs}
    earliest: dict[tuple[int, int], int] = {}
    moved: dict[int, int] = {}  # decision id -> the survivor it moves to
    parked: list[int] = []
    rows = (
        Decision.objects.filter(profile_id__in=[*person_of, *duplicate_of])
        .order_by("decided_at", "pk")
        .values_list("pk", "profile_id", "experience_id")
    )
    for pk, profile_id, experience_id in rows:
        person = person_of.get(profile_id, profile_id)
        if earliest.setdefault((person, experience_id), pk) == pk:
            if profile_id != person:
                moved[pk] = person
        elif profile_id == person:
            parked.append(pk)  # the survivor's, later than the duplicate's
    # Swap places through delete and re-insert (same ids): each step leaves at most one
    # decision per profile and experience, as the unique constraint checks row by row.
    swapped = list(Decision.objects.filter(pk__in=parked))
    Decision.objects.filter(pk__in=parked).delete()
    rows_update_from_map(model=Decision, key="id", column="profile_id", mapping=moved)
    for decision in swapped:
        decision.profile_id = duplicate_of[decision.profile_id]
    Decision.objects.bulk_create(swapped)
    states = []
    for survivor, duplicate in pairs:
        state = {
            "moved": sorted(pk for pk, person in moved.items() if person == survivor.pk),
            "parked": sorted(d.pk for d in swapped if d.profile_id == duplicate.pk),
        }
        states.append(state if state["moved"] or state["parked"] else {})
    return states


def decisions_merge(*, survivor: Profile, duplicate: Profile) -> dict[str, Any]:
    return decisions_merge_many(pairs=[(survivor, duplicate)])[0]


def decisions_unmerge(*, survivor: Profile, duplicate: Profile, state: dict[str, Any]) -> None:
    parked = list(Decision.objects.filter(pk__in=state.get("parked", []), profile=duplicate))
    Decision.objects.filter(pk__in=[d.pk for d in parked]).delete()
    Decision.objects.filter(pk__in=state.get("moved", []), profile=survivor).update(
        profile=duplicate
    )
    for decision in parked:
        decision.profile_id = survivor.pk
    # A survivor that lost the decision it kept (erased, purged) and was assigned again since
    # keeps the newer one; the parked one then goes, as its place is taken.
    Decision.objects.bulk_create(parked, ignore_conflicts=True)


def register() -> None:
    merge_hook_register(
        decisions_merge,
        name=HOOK_NAME,
        unmerge=decisions_unmerge,
        merge_many=decisions_merge_many,
    )
