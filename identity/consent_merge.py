"""The consent side of a merge, registered as a merge hook (identity.hooks).

Conservative: for each purpose, the merged profile keeps a grant only if both profiles allowed
it; a withdrawal, or no consent at all where the purpose needs one (its default is "not
granted"), on either side wins over a grant. Consent history is append-only, so a stricter
state is written as a new withdrawal on the survivor (evidence names the merge), and an
unmerge writes back the survivor's own earlier decision. Suppressions of the duplicate follow
its identifiers to the survivor, and return on unmerge.

This lives in identity because identity may call consent (never the reverse); the consent app
can take it over by registering its own hook under the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from identity.hooks import merge_hook_register
from profiles.models import Profile
from profiles.services import rows_update_from_map

HOOK_NAME = "consent"


def _effective(profile_ids: list[int], purposes: list[Any]) -> dict[int, dict[str, bool]]:
    """{profile id: {purpose code: granted now}} (suppression ignored), in one query."""
    from consent.models import ConsentRecord

    latest: dict[tuple[int, int], bool] = {}
    for profile_id, purpose_id, granted in (
        ConsentRecord.objects.filter(profile_id__in=profile_ids)
        .order_by("profile_id", "purpose_id", "-occurred_at", "-id")
        .values_list("profile_id", "purpose_id", "granted")
    ):
        latest.setdefault((profile_id, purpose_id), granted)
    return {
        profile_id: {p.code: latest.get((profile_id, p.pk), p.granted_by_default) for p in purposes}
        for profile_id in profile_ids
    }


def consent_merge(*, survivor: Profile, duplicate: Profile) -> dict[str, Any]:
    return consent_merge_many(pairs=[(survivor, duplicate)])[0]


def consent_merge_many(*, pairs: Sequence[tuple[Profile, Profile]]) -> list[dict[str, Any]]:
    from consent.models import ConsentRecord, ConsentSource, Purpose, Suppression

    purposes = {p.code: p for p in Purpose.objects.all()}
    effective = (
        _effective([profile.pk for pair in pairs for profile in pair], list(purposes.values()))
        if purposes
        else {}
    )
    now = timezone.now()
    withdrawals, states = [], []
    for survivor, duplicate in pairs:
        ours, theirs = effective.get(survivor.pk, {}), effective.get(duplicate.pk, {})
        withdrawn = [code for code, granted in ours.items() if granted and not theirs.get(code)]
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
    index = {duplicate.pk: number for number, (_, duplicate) in enumerate(pairs)}
    moves = {}
    for pk, profile_id in Suppression.objects.filter(profile_id__in=index).values_list(
        "pk", "profile_id"
    ):
        states[index[profile_id]]["suppressions"].append(pk)
        moves[pk] = pairs[index[profile_id]][0].pk
    rows_update_from_map(model=Suppression, key="id", column="profile_id", mapping=moves)
    return states


def consent_unmerge(*, survivor: Profile, duplicate: Profile, state: dict[str, Any]) -> None:
    from consent.models import ConsentRecord, ConsentSource, Purpose, Suppression

    Suppression.objects.filter(pk__in=state.get("suppressions", [])).update(profile_id=duplicate.pk)
    purposes = {p.code: p for p in Purpose.objects.all()}
    for code in state.get("withdrawn", []):
        if code in purposes:
            ConsentRecord.objects.create(
                profile=survivor,
                purpose=purposes[code],
                granted=True,
                source=ConsentSource.IMPORT,
                occurred_at=timezone.now(),
                evidence={"identity_unmerge": {"duplicate": duplicate.pk}},
            )


def register() -> None:
    merge_hook_register(
        consent_merge, name=HOOK_NAME, unmerge=consent_unmerge, merge_many=consent_merge_many
    )
