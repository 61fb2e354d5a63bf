"""Reads of exact identities."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from access.pii import PiiView
from identity.models import (
    CandidateStatus,
    Identity,
    MatchCandidate,
    MatchSettings,
    MergeRecord,
    RescanJob,
)
from profiles.identifiers import Key
from profiles.models import Profile


def identities_owners(*, keys: Iterable[Key]) -> dict[Key, int]:
    """{(kind, value): profile id} for those of `keys` that already exist, in one query."""
    wanted = set(keys)
    if not wanted:
        return {}
    rows = Identity.objects.filter(
        kind__in={kind for kind, _ in wanted}, value__in={value for _, value in wanted}
    ).values_list("kind", "value", "profile_id")
    return {(kind, value): pid for kind, value, pid in rows if (kind, value) in wanted}


def profile_by_identity(*, kind: str, value: str) -> Profile | None:
    """The profile an exact (already normalized) identifier belongs to, if any."""
    identity = Identity.objects.select_related("profile").filter(kind=kind, value=value).first()
    return identity.profile if identity else None


def match_settings() -> MatchSettings:
    """The identity-resolution settings row (created with defaults on first use)."""
    settings, _ = MatchSettings.objects.get_or_create(pk=1)
    return settings


def profile_current(*, profile: Profile) -> Profile:
    """The profile itself, or the survivor it was merged into (followed to the end)."""
    seen = {profile.pk}
    while profile.merged_into_id is not None and profile.merged_into_id not in seen:
        seen.add(profile.merged_into_id)
        profile = Profile.objects.get(pk=profile.merged_into_id)
    return profile


def candidates_list(
    *,
    status: str = "pending",
    min_probability: float | None = None,
    max_probability: float | None = None,
) -> QuerySet[MatchCandidate]:
    queryset = MatchCandidate.objects.select_related("profile_a", "profile_b", "decided_by")
    if status:
        queryset = queryset.filter(status=status)
    if min_probability is not None:
        queryset = queryset.filter(probability__gte=min_probability)
    if max_probability is not None:
        queryset = queryset.filter(probability__lte=max_probability)
    return queryset.order_by("-probability", "id")


def candidates_pending_count() -> int:
    return MatchCandidate.objects.filter(status=CandidateStatus.PENDING).count()


def merge_history() -> QuerySet[MergeRecord]:
    return MergeRecord.objects.select_related("survivor", "duplicate", "actor", "unmerged_by")


def rescan_jobs() -> QuerySet[RescanJob]:
    return RescanJob.objects.select_related("requested_by").order_by("-created_at", "-id")


# Comparison kinds whose compared values are personal data whatever the trait is called.
PII_FIELD_KINDS = frozenset(
    {"first_name", "last_name", "date", "street", "address", "postcode", "email", "phone", "id"}
)


def explanation_for(*, explanation: dict[str, Any], pii: PiiView) -> dict[str, Any]:
    """A match explanation as a viewer may see it: the compared values of personal fields
    (names, birthdays, addresses, emails, phones, ids) masked by the gate (access.pii)."""
    if pii.visible:
        return explanation
    fields = []
    for field in explanation.get("fields", []):
        if field.get("kind") in PII_FIELD_KINDS or pii.is_personal(str(field.get("path", ""))):
            kind = str(field.get("kind", ""))
            field = {
                **field,
                "left": pii.value(field.get("left"), kind=kind),
                "right": pii.value(field.get("right"), kind=kind),
            }
        fields.append(field)
    return {**explanation, "fields": fields}
