"""Writes of placements and experiences (validated, audited), the decision itself (which
writes the sticky assignment), the bandit's refresh and the erasure of decisions.

A decision, for one person and one or more placements: the placement's first active
experience (by priority) that is live now, whose page conditions hold for the page and whose
audience holds for the person wins; the person's arm in it is the one recorded at their first
decision (a `Decision` row), or a new one (experiences.definition.variant_pick, the holdout
first). Nobody matched: the placement's default content, no row. A person unknown yet, or
without `personalization` consent (suppressed people included), gets the default content and
no row; a suppressed person's earlier rows are deleted when they next ask.

Reads per decision: the source's write key and the active experiences come from caches; then
the person (one query), their consent (one), and their segment memberships with their
recorded decisions (one); the first decision in an experience adds one INSERT.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from access.services import audit_record
from campaigns import stats
from consent.selectors import profile_is_suppressed
from experiences import definition, selectors
from experiences.definition import InvalidExperience
from experiences.models import Decision, Experience, Placement
from profiles.features import COMPUTED_FIELDS
from profiles.identifiers import identifier_normalize
from profiles.models import Profile
from recommendations.selectors import personalization_allowed
from segments.selectors import segment_get

PLACEMENT_FIELDS = ("key", "name", "description", "content_schema", "default_content")
EXPERIENCE_FIELDS = (
    "placement",
    "name",
    "audience",
    "page",
    "variants",
    "allocation",
    "goal_event",
    "priority",
    "starts_at",
    "ends_at",
    "holdout_percent",
    "status",
)


def active_changed() -> None:
    """A placement or experience changed: this process rereads them at its next decision,
    the others within selectors.ACTIVE_CHECK_SECONDS (now, and again at commit so that no
    process caches what the transaction had not yet committed)."""
    cache.set(selectors.VERSION_KEY, secrets.token_hex(8), timeout=None)
    selectors.active_forget()

    def at_commit() -> None:
        cache.set(selectors.VERSION_KEY, secrets.token_hex(8), timeout=None)
        selectors.active_forget()

    transaction.on_commit(at_commit)


# --- placements ------------------------------------------------------------------------------


class PlacementKeyTakenError(InvalidExperience):
    """Another placement has the key: a conflict with what is stored (the API's 409)."""


def _placement_check(fields: Mapping[str, Any], *, placement: Placement | None) -> None:
    problems: dict[str, list[str]] = {}
    key = fields.get("key")
    if key is not None:
        taken = Placement.objects.filter(key=key)
        if placement is not None:
            taken = taken.exclude(pk=placement.pk)
        if taken.exists():
            raise PlacementKeyTakenError({"key": [f"a placement with key {key!r} exists"]})
    schema = fields.get("content_schema", {})
    found = definition.schema_problems(schema)
    if found:
        problems["content_schema"] = found
    else:
        found = definition.content_problems(fields.get("default_content", {}), schema)
        if found:
            problems["default_content"] = found
        if placement is not None:
            for experience in placement.experiences.all():
                for variant in experience.variants:
                    if definition.content_problems(variant["content"], schema):
                        problems.setdefault("content_schema", []).append(
                            f"the content of variant {variant['name']!r} of experience "
                            f"{experience.pk} does not fit this schema"
                        )
    if problems:
        raise InvalidExperience(problems)


@transaction.atomic
def placement_create(*, fields: Mapping[str, Any], actor: Any) -> Placement:
    values = {name: fields[name] for name in PLACEMENT_FIELDS if name in fields}
    _placement_check(values, placement=None)
    placement = Placement.objects.create(**values)
    audit_record(actor=actor, action="create", resource="placement", resource_id=placement.pk)
    active_changed()
    return placement


@transaction.atomic
def placement_update(*, placement: Placement, fields: Mapping[str, Any], actor: Any) -> Placement:
    placement = Placement.objects.select_for_update().get(pk=placement.pk)
    values = {name: fields[name] for name in PLACEMENT_FIELDS if name in fields}
    current = {name: getattr(placement, name) for name in PLACEMENT_FIELDS}
    _placement_check(current | values, placement=placement)
    for name, value in values.items():
        setattr(placement, name, value)
    placement.save()
    audit_record(
        actor=actor,
        action="update",
        resource="placement",
        resource_id=placement.pk,
        details={"fields": sorted(values)},
    )
    active_changed()
    return placement


# --- experiences -----------------------------------------------------------------------------


def _experience_check(values: Mapping[str, Any]) -> None:
    placement = values["placement"]
    problems = definition.experience_problems(
        values,
        content_schema=placement.content_schema,
        segment_exists=lambda segment_id: segment_get(segment_id=segment_id) is not None,
    )
    if values.get("status") not in Experience.Status.values:
        problems["status"] = [f"must be one of {', '.join(Experience.Status.values)}"]
    if problems:
        raise InvalidExperience(problems)


@transaction.atomic
def experience_create(*, fields: Mapping[str, Any], actor: Any) -> Experience:
    values = {name: fields[name] for name in EXPERIENCE_FIELDS if name in fields}
    values.setdefault("status", Experience.Status.DRAFT)
    values.setdefault("page", [])
    values.setdefault("allocation", Experience.Allocation.SPLIT)
    _experience_check(values)
    experience = Experience.objects.create(
        **values, created_by=actor if getattr(actor, "pk", None) else None
    )
    audit_record(actor=actor, action="create", resource="experience", resource_id=experience.pk)
    active_changed()
    return experience


@transaction.atomic
def experience_update(
    *, experience: Experience, fields: Mapping[str, Any], actor: Any
) -> Experience:
    experience = Experience.objects.select_for_update().get(pk=experience.pk)
    values = {name: fields[name] for name in EXPERIENCE_FIELDS if name in fields}
    current = {name: getattr(experience, name) for name in EXPERIENCE_FIELDS}
    _experience_check(current | values)
    for name, value in values.items():
        setattr(experience, name, value)
    if "variants" in values and set(experience.bandit_shares) != set(experience.variant_names):
        experience.bandit_shares, experience.bandit_probability_best = {}, {}
    experience.save()
    audit_record(
        actor=actor,
        action="update",
        resource="experience",
        resource_id=experience.pk,
        details={"fields": sorted(values)},
    )
    active_changed()
    return experience


# --- decisions -------------------------------------------------------------------------------


class UnknownPlacement(LookupError):
    """No placement has this key (the message names it)."""


@dataclass(frozen=True)
class Answer:
    placement: str
    experience: int | None
    variant: str | None
    content: Any
    decision_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "placement": self.placement,
            "experience": self.experience,
            "variant": self.variant,
            "content": self.content,
            "decision_id": self.decision_id,
        }


def _decision_sticky(
    *,
    profile: Profile,
    experience: selectors.ActiveExperience,
    recorded: selectors.Recorded | None,
    now: dt.datetime,
) -> selectors.Recorded:
    """The person's arm: the recorded one while its variant still exists, else a new one,
    recorded (one INSERT; a concurrent first decision of the same person wins the race and
    is read back)."""
    names = [v["name"] for v in experience.variants]
    if recorded is not None and (recorded.in_holdout or recorded.variant in names):
        return recorded
    holdout = definition.in_holdout(
        experience_id=experience.id, profile_id=profile.pk, percent=experience.holdout_percent
    )
    variant = (
        ""
        if holdout
        else definition.variant_pick(
            experience_id=experience.id,
            profile_id=profile.pk,
            variants=experience.variants,
            allocation=experience.allocation,
            bandit_shares=experience.bandit_shares,
        )
    )
    if recorded is not None:  # its variant was removed from the experience since
        Decision.objects.filter(decision_id=recorded.decision_id).update(
            variant=variant, decided_at=now
        )
        return selectors.Recorded(recorded.decision_id, variant, False)
    decision_id = uuid.uuid4()
    uuid_field = Decision._meta.get_field("decision_id")
    insert = (
        f"INSERT INTO {Decision._meta.db_table} "  # noqa: S608
        "(decision_id, profile_id, experience_id, variant, in_holdout, decided_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (profile_id, experience_id) DO NOTHING RETURNING id"
    )
    if connection.vendor == "postgresql":
        # The commit does not wait for the disk: a crash may lose the last fraction of a
        # second of first decisions, whose people are then assigned again by the same hash
        # (their earlier impressions stay unattributed). Waiting for the disk on every
        # visitor's first page view cost more than the whole decision.
        insert = f"SET LOCAL synchronous_commit TO OFF; {insert}"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            insert,
            [
                uuid_field.get_db_prep_value(decision_id, connection),
                profile.pk,
                experience.id,
                variant,
                holdout,
                now,
            ],
        )
        inserted = cursor.fetchone() is not None
    if not inserted:
        row = Decision.objects.get(profile=profile, experience_id=experience.id)
        return selectors.Recorded(str(row.decision_id), row.variant, row.in_holdout)
    return selectors.Recorded(str(decision_id), variant, holdout)


def decisions_take(
    *,
    placement_keys: Sequence[str],
    profile: Profile | None = None,
    identifier: tuple[str, str] | None = None,
    page: Mapping[str, str],
    now: dt.datetime | None = None,
) -> list[Answer]:
    """What the person (`profile`, or the visitor an SDK's (kind, value) `identifier` names)
    sees in each placement (see the module). Raises UnknownPlacement, and
    InvalidIdentifierError for an identifier that is none."""
    now = now or timezone.now()
    active = selectors.active_placements()
    placements = []
    for key in placement_keys:
        if key not in active:
            raise UnknownPlacement(f"no placement has the key {key!r}")
        placements.append(active[key])
    defaults = [Answer(p.key, None, None, p.default_content, None) for p in placements]
    candidates = [
        [
            e
            for e in p.experiences
            if definition.is_live(e.starts_at, e.ends_at, now)
            and definition.page_matches(e.page, page)
        ]
        for p in placements
    ]
    if not any(candidates):
        return defaults
    experience_ids = [e.id for found in candidates for e in found]
    with_segments = any(e.reads_segments for found in candidates for e in found)
    if identifier is not None:
        kind, value = identifier
        profile, segment_ids, recorded = selectors.visitor_by_identifier(
            kind=kind,
            value=identifier_normalize(kind, value),
            experience_ids=experience_ids,
            with_segments=with_segments,
        )
    elif profile is not None:
        segment_ids, recorded = selectors.visitor_state(
            profile_id=profile.pk, experience_ids=experience_ids, with_segments=with_segments
        )
    if profile is None:
        return defaults
    if not personalization_allowed(profile=profile):
        if profile_is_suppressed(profile=profile):
            Decision.objects.filter(profile=profile).delete()
        return defaults
    computed = {name: getattr(profile, name) for name in COMPUTED_FIELDS}
    answers = []
    for placement, found, default in zip(placements, candidates, defaults, strict=True):
        chosen = next(
            (
                e
                for e in found
                if definition.audience_matches(
                    e.audience,
                    traits=profile.traits or {},
                    computed=computed,
                    segment_ids=segment_ids,
                    now=now,
                )
            ),
            None,
        )
        if chosen is None:
            answers.append(default)
            continue
        decision = _decision_sticky(
            profile=profile, experience=chosen, recorded=recorded.get(chosen.id), now=now
        )
        if decision.in_holdout:
            content = placement.default_content
        else:
            variant = next(v for v in chosen.variants if v["name"] == decision.variant)
            content = definition.content_render(
                variant["content"],
                selectors.render_context(profile=profile, page=page, viewer=None),
            )
        answers.append(
            Answer(
                placement.key,
                chosen.id,
                decision.variant or None,
                content,
                str(decision.decision_id),
            )
        )
    return answers


# --- the bandit ------------------------------------------------------------------------------


@transaction.atomic
def experience_bandit_refresh(*, experience: Experience, now: dt.datetime | None = None) -> bool:
    """Recompute a bandit's allocation from the conversions so far (Thompson sampling,
    campaigns.stats); returns whether it changed."""
    if experience.allocation != Experience.Allocation.BANDIT:
        return False
    experience = Experience.objects.select_for_update().get(pk=experience.pk)
    names = experience.variant_names
    counts = selectors.arm_counts(experience=experience)
    exposed = [counts.get(name, (0, 0))[0] for name in names]
    converted = [counts.get(name, (0, 0))[1] for name in names]
    best, shares = stats.bandit_shares(converted, exposed)
    new_shares = {name: float(shares[i]) for i, name in enumerate(names)}
    if new_shares == experience.bandit_shares:
        return False
    experience.bandit_shares = new_shares
    experience.bandit_probability_best = {name: float(best[i]) for i, name in enumerate(names)}
    experience.bandit_refreshed_at = now or timezone.now()
    experience.save(
        update_fields=["bandit_shares", "bandit_probability_best", "bandit_refreshed_at"]
    )
    active_changed()
    return True


def experience_bandits_refresh(*, now: dt.datetime | None = None) -> int:
    """Beat: refresh every active bandit; returns how many allocations changed."""
    return sum(
        experience_bandit_refresh(experience=experience, now=now)
        for experience in Experience.objects.filter(
            status=Experience.Status.ACTIVE, allocation=Experience.Allocation.BANDIT
        )
    )


# --- erasure ---------------------------------------------------------------------------------


def decisions_erase(*, profile_ids: list[int], identifiers: list[str]) -> dict[str, int]:
    """Erasure hook (consent.services.erasure_hook_register): the subject's decisions.
    Decisions name people by profile id only, so `identifiers` are not needed."""
    deleted, _ = Decision.objects.filter(profile_id__in=profile_ids).delete()
    return {Decision._meta.label: deleted} if deleted else {}
