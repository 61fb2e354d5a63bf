"""Consent's side of a profile merge and of its undoing; identity's merge services call these.

Strictest wins: for each purpose, the merged profile keeps a grant only if both profiles allowed
it; a withdrawal, or no consent at all where the purpose needs one (its default is "not
granted"), on either side wins over a grant. Consent history is append-only, so a stricter
state is written as a new withdrawal on the survivor (its evidence names the merge), and an
unmerge gives the survivor its own earlier grant back, unless the survivor decided again since.
Suppressions of the duplicate follow its identifiers to the survivor, and return on unmerge.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from django.utils import timezone

from consent import selectors
from consent.models import ConsentRecord, ConsentSource, Purpose, Suppression
from consent.services.suppression import suppression_cache
from profiles.models import Profile
from profiles.services import rows_update_from_map


def consents_merge(*, pairs: Sequence[tuple[Profile, Profile]]) -> list[dict[str, Any]]:
    """Apply the strictest-wins rule to (survivor, duplicate) pairs of distinct profiles, in a
    few statements whatever their number. Returns one JSON-serialisable state per pair, in the
    pairs' order: identity keeps it on the merge record and hands it to `consents_unmerge`."""
    purposes = {p.code: p for p in Purpose.objects.all()}
    latest = selectors.consent_latest(profile_ids={p.pk for pair in pairs for p in pair})

    def allowed(profile: Profile) -> dict[str, bool]:
        # The history alone: a suppression is not a consent state, it moves separately below.
        return {
            code: latest.get((profile.pk, purpose.pk), (purpose.granted_by_default,))[0]
            for code, purpose in purposes.items()
        }

    now = timezone.now()
    withdrawals: list[ConsentRecord] = []
    states: list[dict[str, Any]] = []
    for survivor, duplicate in pairs:
        ours, theirs = allowed(survivor), allowed(duplicate)
        withdrawn = [code for code, granted in ours.items() if granted and not theirs[code]]
        withdrawals.extend(
            ConsentRecord(
                profile=survivor,
                purpose=purposes[code],
                granted=False,
                source=ConsentSource.IMPORT,
                occurred_at=now,
                evidence={"identity_merge": {"duplicate": duplicate.pk, "rule": "strictest"}},
            )
            for code in withdrawn
        )
        states.append({"withdrawn": withdrawn, "suppressions": []})
    ConsentRecord.objects.bulk_create(withdrawals)

    # Keyed as the (nullable) column is typed.
    index: dict[int | None, int] = {duplicate.pk: n for n, (_, duplicate) in enumerate(pairs)}
    moves: dict[int, int] = {}
    for pk, profile_id in Suppression.objects.filter(profile_id__in=index).values_list(
        "pk", "profile_id"
    ):
        states[index[profile_id]]["suppressions"].append(pk)
        moves[pk] = pairs[index[profile_id]][0].pk
    if moves:
        rows_update_from_map(model=Suppression, key="id", column="profile_id", mapping=moves)
        suppression_cache.changed()
    return states


def consents_unmerge(*, survivor: Profile, duplicate: Profile, state: Mapping[str, Any]) -> None:
    """Undo `consents_merge` for one pair, given the state it returned: the duplicate's
    suppressions go back to it, and the survivor gets a grant back for each purpose the merge
    withdrew, where that withdrawal is still its latest decision (a decision made since, e.g.
    a withdrawal of its own, stands)."""
    moved = Suppression.objects.filter(pk__in=state.get("suppressions", [])).update(
        profile_id=duplicate.pk
    )
    if moved:
        suppression_cache.changed()
    withdrawn = set(state.get("withdrawn", []))
    latest: dict[str, ConsentRecord] = {}
    for record in (
        ConsentRecord.objects.filter(profile=survivor, purpose__code__in=withdrawn)
        .select_related("purpose")
        .order_by("purpose_id", "-occurred_at", "-id")
    ):
        latest.setdefault(record.purpose.code, record)
    now = timezone.now()
    ConsentRecord.objects.bulk_create(
        ConsentRecord(
            profile=survivor,
            purpose=record.purpose,
            granted=True,
            source=ConsentSource.IMPORT,
            occurred_at=now,
            evidence={"identity_unmerge": {"duplicate": duplicate.pk}},
        )
        for record in latest.values()
        if record.evidence.get("identity_merge", {}).get("duplicate") == duplicate.pk
    )
