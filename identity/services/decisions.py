"""Review decisions on suggested pairs, and the identity-resolution settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from access.services import audit_record
from identity.models import (
    CandidateStatus,
    MatchCandidate,
    MatchSettings,
    MergeRecord,
    NotSamePerson,
)
from identity.schemas import settings_validate
from identity.selectors import match_settings
from identity.services.merge import profiles_merge


class DecisionError(ValueError):
    """A decision that cannot be taken (already decided, profiles gone)."""


@transaction.atomic
def candidate_decide(
    *, candidate: MatchCandidate, merge: bool, actor: User | None
) -> MergeRecord | None:
    """Staff decision on a suggested pair: merge them (returns the merge record), or record
    that they are not the same person (never suggested again)."""
    candidate = MatchCandidate.objects.select_for_update().get(pk=candidate.pk)
    if candidate.status != CandidateStatus.PENDING:
        raise DecisionError(f"this suggestion was already decided ({candidate.status})")
    who = actor if getattr(actor, "pk", None) else None
    record = None
    if merge:
        try:
            record = profiles_merge(
                first=candidate.profile_a,
                second=candidate.profile_b,
                actor=actor,
                reason=f"review: {candidate.get_reason_display()}",
                candidate=candidate,
            )
        except ValueError as error:
            raise DecisionError(str(error)) from error
        candidate.status = CandidateStatus.MERGED
    else:
        NotSamePerson.objects.get_or_create(
            profile_a_id=candidate.profile_a_id,
            profile_b_id=candidate.profile_b_id,
            defaults={"decided_by": who},
        )
        candidate.status = CandidateStatus.REJECTED
    candidate.decided_by = who
    candidate.decided_at = timezone.now()
    candidate.save(update_fields=["status", "decided_by", "decided_at", "updated_at"])
    audit_record(
        actor=actor,
        action="identity.decide",
        resource="match_candidates",
        resource_id=candidate.pk,
        details={
            "decision": "merge" if merge else "not the same person",
            "profiles": [candidate.profile_a_id, candidate.profile_b_id],
        },
    )
    return record


def candidates_decide(
    *, candidates: Sequence[MatchCandidate], merge: bool, actor: User | None
) -> tuple[int, list[str]]:
    """Bulk decision; returns (how many were decided, why the others were not)."""
    done, problems = 0, []
    for candidate in candidates:
        try:
            candidate_decide(candidate=candidate, merge=merge, actor=actor)
            done += 1
        except DecisionError as error:
            problems.append(f"suggestion {candidate.pk}: {error}")
    return done, problems


def match_settings_update(*, actor: User | None, **values: Any) -> MatchSettings:
    """Validate and save identity-resolution settings; ValueError {field: message} if bad."""
    cleaned = settings_validate(values)
    settings = match_settings()
    for name, value in cleaned.items():
        setattr(settings, name, value)
    if "fields" in cleaned:
        settings.model = {}  # a different field set needs a new model
    settings.updated_by = actor if getattr(actor, "pk", None) else None
    with transaction.atomic():
        settings.save()
        audit_record(
            actor=actor,
            action="identity.rules",
            resource="match_settings",
            resource_id=settings.pk,
            details={"changed": sorted(cleaned)},
        )
    return settings
