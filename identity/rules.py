"""Segment-style identity rules applied to exact identifiers: blocked values, per-kind limits
and the priority of kinds (most trusted first; `identity.services.identity_resolve` takes an
event's identifiers in that order)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import Count

from identity.models import CandidateStatus, Identity, MatchCandidate, NotSamePerson
from identity.selectors import match_settings
from profiles.identifiers import EventIdentifiers
from profiles.models import Profile

REGEX_PREFIX = "re:"


def blocked_value_compile(value: str) -> re.Pattern[str] | str:
    """ "re:<regex>" → a compiled pattern (re.error if invalid); anything else → folded text."""
    if value.startswith(REGEX_PREFIX):
        return re.compile(value[len(REGEX_PREFIX) :], re.IGNORECASE)
    return value.strip().casefold()


@dataclass
class MatchRules:
    blocked_exact: set[str] = field(default_factory=set)
    blocked_patterns: list[re.Pattern[str]] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)
    priority: list[str] = field(default_factory=list)

    # Verdicts so far: a chunk of events repeats the same few identifiers many times.
    _verdicts: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)

    def blocked(self, value: str) -> bool:
        verdict = self._verdicts.get(value)
        if verdict is None:
            folded = value.strip().casefold()
            verdict = folded in self.blocked_exact or any(
                p.fullmatch(value) for p in self.blocked_patterns
            )
            self._verdicts[value] = verdict
        return verdict

    def allowed(self, identifiers: EventIdentifiers) -> EventIdentifiers:
        """The event's identifiers without blocked values."""
        if not self.blocked_exact and not self.blocked_patterns:
            return identifiers
        return EventIdentifiers(
            keys=[k for k in identifiers.keys if not self.blocked(k[1])],
            alternatives=[k for k in identifiers.alternatives if not self.blocked(k[1])],
        )


def match_rules() -> MatchRules:
    settings = match_settings()
    rules = MatchRules(
        limits={k: int(v) for k, v in (settings.kind_limits or {}).items()},
        priority=list(settings.kind_priority or []),
    )
    for value in settings.blocked_values or []:
        compiled = blocked_value_compile(str(value))
        if isinstance(compiled, str):
            rules.blocked_exact.add(compiled)
        else:
            rules.blocked_patterns.append(compiled)
    return rules


def held_breaks_limits(
    first: Mapping[str, set[str]], second: Mapping[str, set[str]], limits: dict[str, int]
) -> bool:
    """Whether two sets of held identifier values ({kind: values}) together exceed a per-kind
    limit: the in-memory check of `merge_breaks_limits`, for callers that track them."""
    return any(
        len(first.get(kind, set()) | second.get(kind, set())) > limit
        for kind, limit in limits.items()
    )


def merge_breaks_limits(*, survivor: Profile, duplicate: Profile, limits: dict[str, int]) -> bool:
    """Whether the two profiles together would hold more identities of a kind than allowed."""
    return bool(limit_conflicts(first=survivor, second=duplicate, limits=limits))


def limit_conflicts(*, first: Profile, second: Profile, limits: dict[str, int]) -> list[str]:
    rows = (
        Identity.objects.filter(profile__in=[first, second], kind__in=list(limits))
        .values("kind")
        .annotate(n=Count("value", distinct=True))
    )
    return sorted(row["kind"] for row in rows if row["n"] > limits[row["kind"]])


def candidate_for_limit(*, first: Profile, second: Profile) -> MatchCandidate | None:
    """Queue a shared-identifier merge that a per-kind limit stopped, for staff to decide."""
    a, b = sorted([first.pk, second.pk])
    if NotSamePerson.objects.filter(profile_a_id=a, profile_b_id=b).exists():
        return None
    kinds = limit_conflicts(first=first, second=second, limits=match_rules().limits)
    candidate, _ = MatchCandidate.objects.update_or_create(
        profile_a_id=a,
        profile_b_id=b,
        defaults={
            "reason": MatchCandidate.Reason.LIMIT,
            "probability": 1.0,
            "weight": 0.0,
            "explanation": {"fields": [], "limits": kinds, "shared_identifier": True},
            "status": CandidateStatus.PENDING,
        },
    )
    return candidate
