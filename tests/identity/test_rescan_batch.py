"""The full rescan merges in batches: the same merges, with the same results, as merging the
same pairs one at a time; every batched merge keeps a record that unmerge can undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import transaction

from consent.models import ConsentRecord, Purpose
from consent.services import consent_record
from identity.models import Identity, MatchCandidate, MatchSettings, MergeRecord
from identity.services import identity_rescan, profile_snapshot, profile_unmerge, profiles_merge
from profiles.models import Event, Profile
from segments import services as segments
from segments.models import SegmentMembership
from tests.identity.factories import profiles_store
from tests.identity.small_shop import crowd

PEOPLE = [
    ("Robert", "Smith", "1980-02-03", "1 High Street", "SW1A 1AA", "London"),
    ("Alice", "Jones", "1975-06-30", "22 Park Road", "M1 2AB", "Manchester"),
    ("Chidi", "Okafor", "1990-11-11", "5 Mill Lane", "LS1 4AP", "Leeds"),
    ("Mei", "Chen", "1988-01-25", "9 Bridge St", "EH1 1YZ", "Edinburgh"),
    ("Pablo", "Garcia", "1969-09-09", "77 Sea View", "BN1 1AA", "Brighton"),
]
START = datetime(2024, 1, 1, tzinfo=UTC)


def world() -> dict[int, dict]:
    """Everything a merge changes, per profile (times the merge itself sets left out)."""
    out = {}
    for profile in Profile.objects.order_by("pk"):
        out[profile.pk] = {
            **profile_snapshot(profile),
            "merged_into": profile.merged_into_id,
            "identities": sorted(profile.identities.values_list("kind", "value")),
            "events": sorted(Event.objects.filter(profile=profile).values_list("pk", flat=True)),
            "segments": sorted(
                SegmentMembership.objects.filter(profile=profile).values_list(
                    "segment_id", flat=True
                )
            ),
            # The latest decision per purpose (merges and unmerges append records).
            "consent": dict(
                ConsentRecord.objects.filter(profile=profile)
                .order_by("occurred_at", "pk")
                .values_list("purpose__code", "granted")
            ),
        }
    return out


def people(source) -> None:
    """Each person three times (copies from other systems, a typo), among other people
    (enough of them for automatic merges); identities, events, consent and segment
    memberships on the copies."""
    Purpose.objects.get_or_create(code="m_email", defaults={"name": "Email"})
    number = 0
    for k, (first, last, dob, street, post, city) in enumerate(PEOPLE):
        for copy in range(3):
            number += 1
            profile = Profile.objects.create(
                traits={
                    "firstName": first,
                    "lastName": last if copy < 2 else last[:-1] + "e",
                    "birthday": dob,
                    "email": f"{first.lower()}.{last.lower()}@example.com",
                    "address": {"street": street, "postalCode": post, "city": city},
                    **({"plan": "pro"} if copy == 1 else {}),
                },
                trait_timestamps={"firstName": f"2024-0{copy + 1}-01T00:00:00+00:00"},
                first_seen=START + timedelta(days=copy * 10 + k),
                event_count=1,
            )
            Identity.objects.create(kind="anonymous_id", value=f"anon-{number}", profile=profile)
            Event.objects.create(
                source=source,
                message_id=f"m-{number}",
                type="track",
                event="Viewed",
                timestamp=profile.first_seen,
                received_at=profile.first_seen,
                profile=profile,
            )
            consent_record(profile=profile, purpose="m_email", granted=copy != 2, source="api")
    profiles_store(crowd(count=200))
    for definition in (
        {"trait": "plan", "op": "eq", "value": "pro"},
        {"event": "Viewed", "count": {"op": "gte", "value": 2}},
    ):
        segments.segment_refresh(
            segment=segments.segment_create(name="s", definition=definition),
            now=datetime.now(UTC),
        )


def test_a_batched_rescan_makes_the_same_merges_as_merging_pair_by_pair(source):
    people(source)
    before = world()
    rollback = transaction.savepoint()
    summary = identity_rescan(full=True)
    merges = list(MergeRecord.objects.order_by("pk").values_list("survivor_id", "duplicate_id"))
    batched = world()
    assert summary.merged == len(merges) >= 2 * len(PEOPLE) - 1
    # Survivors that took two duplicates did so in two batches, in plan order.
    survivors = [s for s, _ in merges]
    assert any(survivors.count(s) == 2 for s in survivors)
    assert set(MatchCandidate.objects.filter(status="merged").values_list("pk", flat=True)) == set(
        MergeRecord.objects.values_list("candidate_id", flat=True)
    )
    transaction.savepoint_rollback(rollback)
    assert world() == before

    for survivor, duplicate in merges:
        record = profiles_merge(
            first=Profile.objects.get(pk=duplicate), second=Profile.objects.get(pk=survivor)
        )
        assert (record.survivor_id, record.duplicate_id) == (survivor, duplicate)
    assert world() == batched


def test_batched_merges_unmerge_back_to_where_they_were(source):
    people(source)
    before = world()
    identity_rescan(full=True)
    # Newest first: a survivor's later merge is undone before its earlier one.
    for record in MergeRecord.objects.order_by("-pk"):
        profile_unmerge(merge_record=record, actor=None)
    assert world() == before


def test_a_sure_pair_that_would_break_a_per_kind_limit_is_queued_not_merged(source):
    MatchSettings.objects.update_or_create(pk=1, defaults={"kind_limits": {"user_id": 1}})
    people(source)
    first, _, third = Profile.objects.order_by("pk")[:3]  # one person, three copies
    Identity.objects.create(kind="user_id", value="u-1", profile=first)
    Identity.objects.create(kind="user_id", value="u-2", profile=third)
    identity_rescan(full=True)
    # The copy without a user id joins one of them; the two user ids stay apart, for staff.
    one, two = (Identity.objects.get(value=v).profile for v in ("u-1", "u-2"))
    assert one.merged_into_id is None and two.merged_into_id is None and one.pk != two.pk
    assert Profile.objects.filter(merged_into__in=[one, two]).count() == 1
    # Which copy was refused first depends on the plan's order; the two holders always are.
    candidate = MatchCandidate.objects.get(
        reason="limit", profile_a_id=min(one.pk, two.pk), profile_b_id=max(one.pk, two.pk)
    )
    assert candidate.status == "pending"
    assert Profile.objects.filter(merged_into__isnull=False).count() == 2 * len(PEOPLE) - 1
