"""Decisions follow profile merges (experiences.hooks): one decision per person and
experience, the earliest kept; the impressions of the one given up still count to its arm;
unmerges give every profile its own decisions back."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from django.utils import timezone

from consent.services import suppression_create
from experiences.models import Decision, Experience
from experiences.selectors import experience_results
from experiences.services import decisions_take
from identity.models import MergeRecord
from identity.services import PlannedMerge, profile_merge, profile_unmerge, profiles_merge_batch
from profiles.models import Event, Profile
from tests.experiences.conftest import visitor

pytestmark = pytest.mark.django_db
TWO = [
    {"name": "A", "weight": 1, "content": {"title": "A"}},
    {"name": "B", "weight": 1, "content": {"title": "B"}},
]
T0 = timezone.now() - dt.timedelta(days=3)
_events = itertools.count(1)


def decided(profile: Profile, experience: Experience, variant: str, hours: int) -> Decision:
    """A decision as the person got it `hours` after T0 (its arm chosen by the test)."""
    return Decision.objects.create(
        profile=profile,
        experience=experience,
        variant=variant,
        decided_at=T0 + dt.timedelta(hours=hours),
    )


def holding(profile: Profile) -> dict[int, tuple[str, str]]:
    """{experience: (decision id, variant)} of what the profile holds now."""
    return {
        experience: (str(decision_id), variant)
        for experience, decision_id, variant in Decision.objects.filter(
            profile=profile
        ).values_list("experience_id", "decision_id", "variant")
    }


def viewed(source, profile: Profile, decision: Decision, *, clicked: bool = False) -> None:
    for name in ("Experience Viewed", *(["Experience Clicked"] if clicked else [])):
        at = decision.decided_at + dt.timedelta(minutes=1)
        Event.objects.create(
            source=source,
            message_id=f"m-{next(_events)}",
            type="track",
            event=name,
            properties={"decision_id": str(decision.decision_id)},
            timestamp=at,
            received_at=at,
            profile=profile,
        )


def arms(experience: Experience) -> dict[str, dict]:
    return {arm["name"]: arm for arm in experience_results(experience=experience)["arms"]}


def test_where_both_had_a_decision_the_person_keeps_the_earlier_one(source, make_experience):
    experience = make_experience(allocation="split", variants=TWO)
    survivor, duplicate = visitor()[0], visitor()[0]
    later = decided(survivor, experience, "B", hours=5)
    earlier = decided(duplicate, experience, "A", hours=1)
    viewed(source, survivor, later, clicked=True)
    viewed(source, duplicate, earlier)

    profile_merge(survivor=survivor, duplicate=duplicate)

    assert holding(survivor) == {experience.pk: (str(earlier.decision_id), "A")}
    # The one given up stays on the merged-away profile, for the events sent with its id.
    assert holding(duplicate) == {experience.pk: (str(later.decision_id), "B")}
    answer = decisions_take(placement_keys=["home_hero"], profile=survivor, page={})[0]
    assert (answer.decision_id, answer.variant) == (str(earlier.decision_id), "A")
    found = arms(experience)
    # One person, in the arm kept; each impression and click counts to the arm it showed.
    assert (found["A"]["assigned"], found["B"]["assigned"]) == (1, 0)
    assert (found["A"]["impressions"], found["B"]["impressions"]) == (1, 1)
    assert (found["A"]["clicks"], found["B"]["clicks"]) == (0, 1)
    # The person's own outcomes are those of the arm they are in.
    assert (found["A"]["viewed"], found["A"]["clicked"], found["A"]["converted"]) == (1, 0, 0)


def test_the_survivors_earlier_decision_stays_and_the_duplicates_stays_behind(make_experience):
    experience = make_experience(allocation="split", variants=TWO)
    survivor, duplicate = visitor()[0], visitor()[0]
    earlier = decided(survivor, experience, "B", hours=1)
    later = decided(duplicate, experience, "A", hours=2)

    record = profile_merge(survivor=survivor, duplicate=duplicate).merge_record

    assert holding(survivor) == {experience.pk: (str(earlier.decision_id), "B")}
    assert holding(duplicate) == {experience.pk: (str(later.decision_id), "A")}
    assert record.hooks["experiences"] == {}  # nothing moved
    assert arms(experience)["B"]["assigned"] == 1
    assert arms(experience)["A"]["assigned"] == 0


def test_a_profile_without_decisions_takes_the_others(placement, make_experience):
    first = make_experience(name="First", allocation="split", variants=TWO)
    second = make_experience(name="Second", allocation="split", variants=TWO, priority=200)
    empty, full = visitor()[0], visitor()[0]
    one = decided(full, first, "A", hours=1)
    two = decided(full, second, "B", hours=2)
    profile_merge(survivor=empty, duplicate=full)
    assert holding(empty) == {
        first.pk: (str(one.decision_id), "A"),
        second.pk: (str(two.decision_id), "B"),
    }
    assert holding(full) == {}

    # And the other way round: a survivor with decisions, a duplicate with none.
    other = visitor()[0]
    before = holding(empty)
    profile_merge(survivor=empty, duplicate=other)
    assert holding(empty) == before


def test_a_three_way_merge_keeps_the_earliest_and_unmerges_step_by_step(source, make_experience):
    experience = make_experience(allocation="split", variants=TWO)
    ann, bob, cat = visitor()[0], visitor()[0], visitor()[0]
    mine = {
        ann: decided(ann, experience, "A", hours=3),
        bob: decided(bob, experience, "B", hours=1),  # the earliest
        cat: decided(cat, experience, "A", hours=2),
    }
    for profile, decision in mine.items():
        viewed(source, profile, decision)
    own = {profile: holding(profile) for profile in mine}

    first = profile_merge(survivor=ann, duplicate=bob).merge_record
    second = profile_merge(survivor=cat, duplicate=ann).merge_record

    assert holding(cat) == {experience.pk: (str(mine[bob].decision_id), "B")}
    assert Decision.objects.count() == 3  # none lost: two wait on merged-away profiles
    found = arms(experience)
    assert found["B"]["assigned"] + found["A"]["assigned"] == 1
    assert (found["A"]["impressions"], found["B"]["impressions"]) == (2, 1)

    profile_unmerge(merge_record=second, actor=None)
    profile_unmerge(merge_record=first, actor=None)
    assert {profile: holding(profile) for profile in mine} == own
    found = arms(experience)
    assert (found["A"]["assigned"], found["B"]["assigned"]) == (2, 1)


def test_a_suppressed_duplicate_makes_the_merged_person_leave_no_decisions(make_experience):
    experience = make_experience(allocation="split", variants=TWO)
    survivor, duplicate = visitor()[0], visitor()[0]
    decided(survivor, experience, "A", hours=1)
    suppression_create(identifiers={}, profile_ids=[duplicate.pk])
    profile_merge(survivor=survivor, duplicate=duplicate)
    assert not Decision.objects.exists()
    answer = decisions_take(placement_keys=["home_hero"], profile=survivor, page={})[0]
    assert answer.decision_id is None and not Decision.objects.exists()


def test_random_merges_keep_the_earliest_and_unmerges_restore_everything(
    placement, make_experience
):
    """Many people, each under up to four profiles with decisions in three experiences at
    random times, merged in random order, partly in batches (the rescan's path): each
    person holds exactly their earliest decision per experience and no decision is lost;
    undoing the merges in reverse gives every profile its own decisions back."""
    rng = random.Random(18)
    experiences = [
        make_experience(name=f"E{n}", allocation="split", variants=TWO, priority=n)
        for n in range(3)
    ]
    people = []
    for _ in range(25):
        profiles = [visitor()[0] for _ in range(rng.randint(2, 4))]
        for profile in profiles:
            for experience in experiences:
                if rng.random() < 0.6:
                    decided(profile, experience, rng.choice("AB"), hours=rng.randint(0, 48))
        people.append(profiles)
    own = {p.pk: holding(p) for profiles in people for p in profiles}
    total = Decision.objects.count()

    records: list[MergeRecord] = []
    for round_ in range(3):  # a chain of merges: each round merges one more profile per person
        planned = []
        for profiles in people:
            if round_ + 1 < len(profiles):
                survivor = profiles[round_ + 1]
                duplicate = Profile.objects.get(pk=profiles[0].pk)
                duplicate = (
                    Profile.objects.get(pk=duplicate.merged_into_id)
                    if duplicate.merged_into_id
                    else duplicate
                )
                planned.append((survivor, duplicate))
        if round_ == 1:
            records += profiles_merge_batch(
                merges=[PlannedMerge(s.pk, d.pk, reason="test") for s, d in planned]
            )
        else:
            for survivor, duplicate in planned:
                survivor.refresh_from_db()
                merged = profile_merge(survivor=survivor, duplicate=duplicate)
                records.append(merged.merge_record)

    assert Decision.objects.count() == total
    for profiles in people:
        current = profiles[-1]
        for experience in experiences:
            theirs = [own[p.pk][experience.pk] for p in profiles if experience.pk in own[p.pk]]
            first = min(
                theirs,
                key=lambda held: (
                    Decision.objects.filter(decision_id=held[0])
                    .values_list("decided_at", "pk")
                    .get()
                ),
                default=None,
            )
            assert holding(current).get(experience.pk) == first
    for experience in experiences:
        assigned = sum(arm["assigned"] for arm in arms(experience).values())
        assert assigned == sum(
            any(experience.pk in own[p.pk] for p in profiles) for profiles in people
        )

    for record in reversed(records):
        profile_unmerge(merge_record=record, actor=None)
    assert {pk: holding(Profile.objects.get(pk=pk)) for pk in own} == own
