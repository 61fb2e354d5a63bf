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

from typing import Any

from django.utils import timezone

from identity.hooks import merge_hook_register
from profiles.models import Profile

HOOK_NAME = "consent"


def _effective(profile_id: int) -> dict[str, tuple[bool, bool]]:
    """{purpose code: (granted now, from a record)}, suppression ignored."""
    from consent.models import ConsentRecord, Purpose

    latest: dict[int, bool] = {}
    for purpose_id, granted in (
        ConsentRecord.objects.filter(profile_id=profile_id)
        .order_by("purpose_id", "-occurred_at", "-id")
        .values_list("purpose_id", "granted")
    ):
        latest.setdefault(purpose_id, granted)
    return {
        p.code: (latest.get(p.pk, p.granted_by_default), p.pk in latest)
        for p in Purpose.objects.all()
    }


def consent_merge(*, survivor: Profile, duplicate: Profile) -> dict[str, Any]:
    from consent.models import ConsentRecord, ConsentSource, Purpose, Suppression

    ours, theirs = _effective(survivor.pk), _effective(duplicate.pk)
    withdrawn = []
    now = timezone.now()
    purposes = {p.code: p for p in Purpose.objects.all()}
    for code, (granted, _) in ours.items():
        if granted and not theirs.get(code, (False, False))[0]:
            ConsentRecord.objects.create(
                profile=survivor,
                purpose=purposes[code],
                granted=False,
                source=ConsentSource.IMPORT,
                occurred_at=now,
                evidence={"identity_merge": {"duplicate": duplicate.pk, "rule": "strictest"}},
            )
            withdrawn.append(code)
    moved = list(Suppression.objects.filter(profile_id=duplicate.pk).values_list("pk", flat=True))
    Suppression.objects.filter(pk__in=moved).update(profile_id=survivor.pk)
    return {"withdrawn": withdrawn, "suppressions": moved}


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
    merge_hook_register(consent_merge, name=HOOK_NAME, unmerge=consent_unmerge)
