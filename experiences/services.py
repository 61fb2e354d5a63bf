"""Writes of placements and experiences (validated, audited), the decision itself (which
writes the sticky assignment), the bandit's refresh, and decisions' erasure, suppression and
retention (their merges are experiences.hooks').

A decision, for one person and one or more placements: the placement's first active
experience (by priority) that is live now, whose page conditions hold for the page and whose
audience holds for the person wins; the person's arm in it is the one recorded at their first
decision (a `Decision` row), or a new one (experiences.definition.variant_pick, the holdout
first). Nobody matched: the placement's default content, no row. A person without
`personalization` consent (suppressed people included) gets the default content and no row;
a suppressed person's rows go when the suppression is written (consent's suppression hook,
decisions_suppress), and any that reached them since go when they next ask. A visitor nobody
knows yet is answered by experiences that target page context alone, with nothing recorded
(`_first_visit_answers` says why that needs no consent).

Reads per decision: the source's write key and the active experiences come from caches; then
one statement (prepared per connection) reads the person, the consent gate's answer, their
segment memberships and their recorded arms (selectors.visitor_get); the first decisions in
the placements asked add one INSERT between them. A repeat visit writes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from access.services import audit_record
from campaigns import stats
from experiences import definition, selectors
from experiences.definition import InvalidExperience
from experiences.models import Decision, Experience, Placement
from profiles.identifiers import identifier_normalize
from profiles.models import Profile
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


def _arm_new(experience: selectors.ActiveExperience, person: int | str) -> selectors.Recorded:
    """A person's arm drawn afresh (the holdout first); no decision id yet."""
    if definition.in_holdout(
        experience_id=experience.id, person=person, percent=experience.holdout_percent
    ):
        return selectors.Recorded("", "", True)
    variant = definition.variant_pick(
        experience_id=experience.id,
        person=person,
        variants=experience.variants,
        allocation=experience.allocation,
        bandit_shares=experience.bandit_shares,
    )
    return selectors.Recorded("", variant, False)


def _arms_sticky(
    *, visitor: selectors.Visitor, experiences: list[selectors.ActiveExperience], now: dt.datetime
) -> dict[int, selectors.Recorded]:
    """The person's arm in each experience: the recorded one while its variant still exists,
    else a new one, recorded. The new ones of all the placements asked go in one INSERT
    (one round trip, the commit included); a concurrent first decision of the same person wins
    the race and is read back. Repeat visits write nothing."""
    arms: dict[int, selectors.Recorded] = {}
    new: list[tuple[selectors.ActiveExperience, selectors.Recorded]] = []
    for experience in experiences:
        recorded = visitor.recorded.get(experience.id)
        names = [v["name"] for v in experience.variants]
        if recorded is not None and (recorded.in_holdout or recorded.variant in names):
            arms[experience.id] = recorded
            continue
        arm = _arm_new(experience, visitor.id)
        if recorded is not None:  # its variant was removed from the experience since
            Decision.objects.filter(decision_id=recorded.decision_id).update(
                variant=arm.variant, in_holdout=arm.in_holdout, decided_at=now
            )
            arms[experience.id] = selectors.Recorded(
                recorded.decision_id, arm.variant, arm.in_holdout
            )
        else:
            new.append((experience, dataclasses.replace(arm, decision_id=str(uuid.uuid4()))))
    if not new:
        return arms
    uuid_field = Decision._meta.get_field("decision_id")
    rows = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(new))
    insert = (
        f"INSERT INTO {Decision._meta.db_table} "  # noqa: S608
        "(decision_id, profile_id, experience_id, variant, in_holdout, decided_at) "
        f"VALUES {rows} ON CONFLICT (profile_id, experience_id) DO NOTHING RETURNING experience_id"
    )
    if connection.vendor == "postgresql":
        # The commit does not wait for the disk: a crash may lose the last fraction of a
        # second of first decisions, whose people are then assigned again by the same hash
        # (their earlier impressions stay unattributed). Waiting for the disk on every
        # visitor's first page view cost more than the whole decision. Sent as one string,
        # the two statements are one transaction (SET LOCAL holds for it) and one round trip.
        insert = f"SET LOCAL synchronous_commit TO OFF; {insert}"
    params: list[Any] = []
    for experience, arm in new:
        params += [
            uuid_field.get_db_prep_value(uuid.UUID(arm.decision_id), connection),
            visitor.id,
            experience.id,
            arm.variant,
            arm.in_holdout,
            now,
        ]
    with connection.cursor() as cursor:
        cursor.execute(insert, params)
        inserted = {row[0] for row in cursor.fetchall()}
    lost = [experience.id for experience, _ in new if experience.id not in inserted]
    for experience, arm in new:
        if experience.id in inserted:
            arms[experience.id] = arm
    for experience_id, decision_id, variant, holdout in Decision.objects.filter(
        profile_id=visitor.id, experience_id__in=lost
    ).values_list("experience_id", "decision_id", "variant", "in_holdout"):
        arms[experience_id] = selectors.Recorded(str(decision_id), variant, holdout)
    return arms


def _answer(
    placement: selectors.ActivePlacement,
    experience: selectors.ActiveExperience,
    arm: selectors.Recorded,
    context: Mapping[str, Any],
) -> Answer:
    if arm.in_holdout:
        content = placement.default_content
    else:
        variant = next(v for v in experience.variants if v["name"] == arm.variant)
        content = definition.content_render(variant["content"], context)
    return Answer(
        placement.key, experience.id, arm.variant or None, content, arm.decision_id or None
    )


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
    visitor = None
    if identifier is not None:
        kind, value = identifier
        identifier = (kind, identifier_normalize(kind, value))
        visitor = selectors.visitor_get(
            identifier=identifier, experience_ids=experience_ids, with_segments=with_segments
        )
        if visitor is None:
            return _first_visit_answers(
                placements, candidates, defaults, identifier=identifier, page=page
            )
    elif profile is not None:
        visitor = selectors.visitor_get(
            profile_id=profile.pk, experience_ids=experience_ids, with_segments=with_segments
        )
    if visitor is None:
        return defaults
    if not visitor.personalization_allowed:
        if visitor.suppressed:
            Decision.objects.filter(profile_id=visitor.id).delete()
        return defaults
    chosen = [
        next(
            (
                e
                for e in found
                if definition.audience_matches(
                    e.audience,
                    traits=visitor.traits,
                    computed=visitor.computed,
                    segment_ids=visitor.segment_ids,
                    now=now,
                )
            ),
            None,
        )
        for found in candidates
    ]
    arms = _arms_sticky(visitor=visitor, experiences=[e for e in chosen if e], now=now)
    context = selectors.render_context(profile=visitor, page=page, viewer=None)
    return [
        _answer(placement, experience, arms[experience.id], context) if experience else default
        for placement, experience, default in zip(placements, chosen, defaults, strict=True)
    ]


def _first_visit_answers(
    placements: list[selectors.ActivePlacement],
    candidates: list[list[selectors.ActiveExperience]],
    defaults: list[Answer],
    *,
    identifier: tuple[str, str],
    page: Mapping[str, str],
) -> list[Answer]:
    """A visitor nobody knows yet (no profile has their identifier): the first experience
    whose targeting is page context alone (`audience` null), else the default.

    Why this needs no consent: context-only targeting decides by what this request says about
    the page (path, referrer, UTM campaign, device, country), as contextual content would,
    and uses no personal data stored about the person; nothing is stored about them either.
    Their arm is drawn by the same hash as a person's, on the identifier they were asked
    about, and not recorded: no Decision row (a decision row is personal data, kept only for
    a profile whose `personalization` consent the gate has answered), so the answer carries
    no decision_id and the results count the visitor from their first recorded decision on
    (once their events made a profile, which the usual rules then decide for; a split may then
    draw them another arm). No profile is created here: events do that."""
    kind, value = identifier
    answers = []
    context = selectors.render_context(profile=None, page=page, viewer=None)
    for placement, found, default in zip(placements, candidates, defaults, strict=True):
        experience = next((e for e in found if e.context_only), None)
        if experience is None:
            answers.append(default)
            continue
        arm = _arm_new(experience, f"{kind}:{value}")
        answers.append(_answer(placement, experience, arm, context))
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


# --- erasure, suppression, retention --------------------------------------------------------


def decisions_erase(*, profile_ids: list[int], identifiers: list[str]) -> dict[str, int]:
    """Erasure hook (consent.services.erasure_hook_register): the subject's decisions.
    Decisions name people by profile id only, so `identifiers` are not needed."""
    deleted, _ = Decision.objects.filter(profile_id__in=profile_ids).delete()
    return {Decision._meta.label: deleted} if deleted else {}


def decisions_suppress(*, profile_ids: list[int]) -> dict[str, int]:
    """Suppression hook (consent.services.suppression_hook_register): the person's decisions,
    with those left on profiles merged into theirs (experiences.hooks). From now on they get
    the default content (decisions_take reads their consent) and no new row."""
    deleted, _ = Decision.objects.filter(
        Q(profile_id__in=profile_ids) | Q(profile__merged_into_id__in=profile_ids)
    ).delete()
    return {Decision._meta.label: deleted} if deleted else {}


def decisions_purge(*, before: dt.datetime, batch_size: int) -> dict[str, int]:
    """Retention hook (consent.services.retention_hook_register): decisions taken before
    `before` go once nothing still relies on them: their experience ended before it, or their
    person (the survivor, for one left behind by a merge) has not been seen since. A person
    active within the retention window keeps their arm in a running experience, so that what
    they see does not change under them and their recent impressions stay counted."""
    inactive = Q(profile__merged_into__isnull=True) & (
        Q(profile__last_seen__isnull=True) | Q(profile__last_seen__lt=before)
    )
    inactive |= Q(profile__merged_into__isnull=False) & (
        Q(profile__merged_into__last_seen__isnull=True)
        | Q(profile__merged_into__last_seen__lt=before)
    )
    ended = Q(experience__status=Experience.Status.ENDED, experience__updated_at__lt=before) | Q(
        experience__ends_at__lt=before
    )
    old = Decision.objects.filter(Q(decided_at__lt=before) & (inactive | ended))
    purged = 0
    while ids := list(old.order_by("pk").values_list("pk", flat=True)[:batch_size]):
        purged += Decision.objects.filter(pk__in=ids).delete()[0]
    return {Decision._meta.label: purged} if purged else {}
