"""Merge and unmerge through the real pipeline, per-kind limits, blocked values, merge hooks,
and the fuzzy rescan over the database."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from access.services import source_create
from cdp import pipeline
from identity.hooks import merge_hook_register, merge_hook_unregister
from identity.models import (
    CandidateStatus,
    Identity,
    MatchCandidate,
    MatchSettings,
    MergeRecord,
    NotSamePerson,
    RescanJob,
)
from identity.selectors import match_settings
from identity.services import identity_rescan, profile_snapshot, profile_unmerge, profiles_merge
from profiles.models import Event, Profile
from tests.identity.factories import event_build, event_make, events_store, profiles_store
from tests.identity.small_shop import crowd, small_shop


def process(*events: Event) -> None:
    pipeline.events_process(event_ids=[e.pk for e in events])


def identify(source, *, at: int = 0, **kwargs) -> Event:
    event = event_make(source, "identify", at=timedelta(minutes=at), **kwargs)
    process(event)
    event.refresh_from_db()
    return event


def state(profile: Profile) -> dict:
    profile.refresh_from_db()
    return {
        **profile_snapshot(profile),
        "merged_into": profile.merged_into_id,
        "identities": sorted(Identity.objects.filter(profile=profile).values_list("kind", "value")),
        "events": sorted(Event.objects.filter(profile=profile).values_list("pk", flat=True)),
    }


def two_people(source):
    a = identify(
        source,
        user_id="u-ann",
        traits={"email": "ann@example.com", "firstName": "Ann", "plan": "pro"},
    ).profile
    b = identify(
        source,
        at=5,
        anonymous_id="anon-b",
        traits={"firstName": "Anne", "city": "Leeds"},
    ).profile
    event_make(source, "track", event="Viewed", anonymous_id="anon-b", at=timedelta(minutes=6))
    pipeline.events_process(
        event_ids=list(Event.objects.filter(processed_at__isnull=True).values_list("pk", flat=True))
    )
    return a, b


def test_merge_then_unmerge_gives_back_both_profiles(source, marketer):
    a, b = two_people(source)
    before = state(a), state(b)
    record = profiles_merge(first=a, second=b, actor=marketer, reason="test")
    assert record.survivor_id == a.pk  # oldest first seen survives
    merged = state(a)
    assert merged["traits"]["city"] == "Leeds" and merged["traits"]["plan"] == "pro"
    assert ("anonymous_id", "anon-b") in merged["identities"]
    assert state(b)["merged_into"] == a.pk
    assert record.trait_sources["city"] == "duplicate"

    profile_unmerge(merge_record=record, actor=marketer)
    assert (state(a), state(b)) == before
    assert NotSamePerson.objects.filter(profile_a=a, profile_b=b).exists()
    with pytest.raises(ValueError, match="already undone"):
        profile_unmerge(merge_record=record, actor=marketer)


def test_unmerge_attributes_what_arrived_since_by_identifier(source, admin_user):
    a, b = two_people(source)
    record = profiles_merge(first=a, second=b, actor=admin_user)
    # Since the merge: one event for each original person, both landing on the survivor.
    later_b = event_make(
        source,
        "identify",
        anonymous_id="anon-b",
        traits={"phone": "+1 415 555 0100"},
        at=timedelta(minutes=30),
    )
    later_a = event_make(source, "track", event="Paid", user_id="u-ann", at=timedelta(minutes=31))
    process(later_b, later_a)
    assert Event.objects.get(pk=later_b.pk).profile_id == a.pk
    profile_unmerge(merge_record=record, actor=admin_user)
    assert Event.objects.get(pk=later_b.pk).profile_id == b.pk
    assert Event.objects.get(pk=later_a.pk).profile_id == a.pk
    b.refresh_from_db()
    assert b.traits["phone"] == "+1 415 555 0100" and "phone" not in state(a)["traits"]
    assert Identity.objects.get(kind="phone").profile_id == b.pk


class TestMergeRoundTrip(HypothesisTestCase):
    """unmerge(merge(a, b)) == (a, b) for generated trait sets and event histories."""

    traits = st.dictionaries(
        st.sampled_from(["firstName", "lastName", "city", "plan", "age", "email"]),
        st.one_of(
            # No NUL: Postgres jsonb cannot hold it (ingestion never stores one).
            st.text(
                st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=12
            ),
            st.integers(-5, 5),
            st.none(),
        ),
        max_size=4,
    )

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(traits_a=traits, traits_b=traits, events_b=st.integers(0, 3), b_first=st.booleans())
    def test_round_trip(self, traits_a, traits_b, events_b, b_first):
        src = source_create(name=f"S{Profile.objects.count()}").record
        n = Profile.objects.count()
        ea = event_build(
            src, "identify", user_id=f"ua{n}", traits=traits_a, at=timedelta(minutes=10)
        )
        eb = [
            event_build(
                src,
                "identify" if k == 0 else "track",
                anonymous_id=f"ab{n}",
                traits=traits_b if k == 0 else {},
                event="" if k == 0 else "Seen",
                at=timedelta(minutes=0 if b_first else 20, seconds=k),
            )
            for k in range(events_b + 1)
        ]
        pipeline.events_process(event_ids=events_store([ea, *eb]))
        a = Identity.objects.get(value=f"ua{n}").profile
        b = Identity.objects.get(value=f"ab{n}").profile
        before = state(a), state(b)
        record = profiles_merge(first=a, second=b)
        profile_unmerge(merge_record=record, actor=None)
        assert (state(a), state(b)) == before


def test_a_merge_that_breaks_a_per_kind_limit_becomes_a_review_candidate(source):
    MatchSettings.objects.update_or_create(pk=1, defaults={"kind_limits": {"user_id": 1}})
    first = identify(source, user_id="u-1", anonymous_id="dev-1").profile
    second = identify(source, at=1, user_id="u-2", anonymous_id="dev-2").profile
    # One event ties both profiles' identifiers together: without a limit they would merge.
    identify(source, at=2, user_id="u-2", anonymous_id="dev-1")
    first.refresh_from_db(), second.refresh_from_db()
    assert first.merged_into_id is None and second.merged_into_id is None
    candidate = MatchCandidate.objects.get()
    assert candidate.reason == "limit" and candidate.status == "pending"
    assert candidate.explanation["limits"] == ["user_id"]


def test_blocked_identifier_values_never_join_profiles(source):
    MatchSettings.objects.update_or_create(
        pk=1, defaults={"blocked_values": ["anonymous", "re:^test-.*"]}
    )
    first = identify(source, user_id="u-1", traits={"email": "test-1@example.com"}).profile
    second = identify(source, at=1, user_id="u-2", traits={"email": "test-1@example.com"}).profile
    third = identify(source, at=2, user_id="u-3", anonymous_id="ANONYMOUS").profile
    assert len({first.pk, second.pk, third.pk}) == 3
    assert not Identity.objects.filter(value__in=["test-1@example.com", "ANONYMOUS"]).exists()


def test_merge_hooks_run_on_merge_and_get_their_state_back_on_unmerge(source):
    calls = []

    def merge(*, survivor, duplicate):
        calls.append(("merge", survivor.pk, duplicate.pk))
        return {"moved": [duplicate.pk]}

    def unmerge(*, survivor, duplicate, state):
        calls.append(("unmerge", state["moved"]))

    merge_hook_register(merge, name="test-hook", unmerge=unmerge)
    try:
        a, b = two_people(source)
        record = profiles_merge(first=a, second=b)
        assert record.hooks["test-hook"] == {"moved": [b.pk]}
        profile_unmerge(merge_record=record, actor=None)
    finally:
        merge_hook_unregister("test-hook")
    assert calls == [("merge", a.pk, b.pk), ("unmerge", [b.pk])]


@pytest.mark.django_db(transaction=True)
def test_parallel_identifies_never_make_two_profiles_or_lose_identities():
    if connection.vendor != "postgresql":
        pytest.skip("advisory locks are Postgres only")
    src = source_create(name="Parallel").record
    people = 12
    batches = [
        events_store(
            [
                event_build(
                    src,
                    "identify",
                    user_id=f"user-{k}",
                    anonymous_id=f"anon-{k}-{worker}",
                    traits={"email": f"p{k}@example.com"},
                    at=timedelta(seconds=worker),
                )
                for k in range(people)
            ]
        )
        for worker in range(4)
    ]
    errors = []

    def run(ids):
        try:
            pipeline.events_process(event_ids=ids)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(ids,)) for ids in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    active = Profile.objects.filter(merged_into__isnull=True)
    assert active.count() == people
    for k in range(people):
        owners = set(
            Identity.objects.filter(
                value__in=[f"user-{k}", f"p{k}@example.com"] + [f"anon-{k}-{w}" for w in range(4)]
            ).values_list("profile_id", flat=True)
        )
        assert len(owners) == 1
    assert Identity.objects.count() == people * 6


def crm_profile(**traits) -> Profile:
    return Profile.objects.create(traits=traits)


def test_full_rescan_merges_the_sure_pairs_and_queues_the_uncertain_ones(db):
    profiles_store(crowd(count=200))
    people = [
        ("Robert", "Smith", "1980-02-03", "1 High Street", "SW1A 1AA", "London"),
        ("Alice", "Jones", "1975-06-30", "22 Park Road", "M1 2AB", "Manchester"),
        ("Chidi", "Okafor", "1990-11-11", "5 Mill Lane", "LS1 4AP", "Leeds"),
        ("Mei", "Chen", "1988-01-25", "9 Bridge St", "EH1 1YZ", "Edinburgh"),
        ("Pablo", "Garcia", "1969-09-09", "77 Sea View", "BN1 1AA", "Brighton"),
        ("Ingrid", "Larsen", "1995-03-14", "3 Kings Road", "CB1 2AA", "Cambridge"),
    ]
    for k, (first, last, dob, street, post, city) in enumerate(people):
        crm_profile(
            firstName=first,
            lastName=last,
            birthday=dob,
            email=f"{first.lower()}.{last.lower()}@example.com",
            address={"street": street, "postalCode": post, "city": city},
        )
        # A second profile for the same person (another id, a typo, a nickname)...
        crm_profile(
            firstName={"Robert": "Bob"}.get(first, first),
            lastName=last if k % 2 else last[:-1] + "e",
            birthday=dob,
            address={"street": street, "postalCode": post, "city": city},
        )
    for k in range(30):  # ...among other people
        crm_profile(
            firstName=f"Person{k}",
            lastName=f"Other{k % 7}",
            birthday=f"19{50 + k}-0{1 + k % 9}-1{k % 9}",
            address={"postalCode": f"ZZ{k} 1AA"},
        )
    summary = identity_rescan(full=True)
    assert summary.merged + summary.queued >= 5
    assert summary.merged >= 3
    merged = MergeRecord.objects.all()
    for record in merged:
        assert (
            record.survivor.traits["lastName"][:3]
            == record.duplicate_before["traits"]["lastName"][:3]
        )
    assert match_settings().model  # fitted and saved

    # Staff reject one queued pair: it is never suggested again.
    pending = MatchCandidate.objects.filter(status=CandidateStatus.PENDING)
    if pending.exists():
        from identity.services import candidate_decide

        candidate_decide(candidate=pending.first(), merge=False, actor=None)
    rejected = set(NotSamePerson.objects.values_list("profile_a_id", "profile_b_id"))
    identity_rescan(full=True)
    for a, b in rejected:
        assert MatchCandidate.objects.get(profile_a_id=a, profile_b_id=b).status == "rejected"


SURNAMES = [
    "smith",
    "jones",
    "okafor",
    "chen",
    "garcia",
    "larsen",
    "novak",
    "rossi",
    "kowalski",
    "dubois",
]
GIVEN = ["ann", "bert", "chidi", "dmitri", "eva", "farid", "gina", "hugo", "ines", "jamal"]


def test_incremental_rescan_matches_a_changed_profile_against_the_index(db, capsys):
    profiles_store(small_shop(seed=0).traits)  # 400 customers, 20 of them twice
    for k in range(20):
        crm_profile(
            firstName=GIVEN[k % 10].title(),
            lastName=SURNAMES[(k * 3) % 10].title() + ("" if k < 10 else "son"),
            birthday=f"19{60 + k}-0{1 + k % 9}-{10 + k}",
            address={"postalCode": f"AB{k} 1CD", "street": f"{k} Long Road"},
        )
    call_command("identity_rescan", "--full")
    out = capsys.readouterr().out
    assert "full rescan: 440 profiles" in out and "20 merged" in out, out
    target = Profile.objects.order_by("pk")[427]
    newcomer = crm_profile(
        firstName=target.traits["firstName"],
        lastName=target.traits["lastName"][:-1],  # a typo
        birthday=target.traits["birthday"],
        address=target.traits["address"],
    )
    call_command("identity_rescan")
    out = capsys.readouterr().out
    assert out.startswith("incremental rescan:") and "1 merged" in out, out
    newcomer.refresh_from_db()
    assert newcomer.merged_into_id == target.pk
    assert RescanJob.objects.filter(status="done").count() == 2


def test_a_second_rescan_while_one_runs_is_refused(db):
    RescanJob.objects.create(kind="full", status="running")
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already queued or running"):
        call_command("identity_rescan")
