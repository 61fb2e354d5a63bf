"""Reads of placements, experiences and decisions; the active experiences of a placement as
decisions read them (cached); an experience's results."""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg2.errors
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.db.models import Count, QuerySet
from django.db.models.fields.json import KT
from django.utils import timezone

from access.pii import pii_for
from campaigns import stats
from consent.selectors import consent_allows, consent_allows_sql, profile_is_suppressed
from experiences import definition
from experiences.models import Decision, Experience, Placement
from identity.models import Identity
from identity.selectors import profile_by_identity, profile_current
from profiles.features import COMPUTED_FIELDS
from profiles.models import Event, Profile
from profiles.selectors import json_column
from recommendations.selectors import PERSONALIZATION, personalization_allowed
from segments.models import SegmentMembership

VIEWED = "Experience Viewed"
CLICKED = "Experience Clicked"
HOLDOUT = "holdout"


def placement_list() -> QuerySet[Placement]:
    return Placement.objects.annotate(experience_count=Count("experiences")).order_by("key")


def placement_get(*, key: str) -> Placement | None:
    return Placement.objects.filter(key=key).first()


def placement_get_by_id(*, placement_id: int) -> Placement | None:
    return Placement.objects.filter(pk=placement_id).first()


def experience_list(*, placement: Placement | None = None) -> QuerySet[Experience]:
    rows = Experience.objects.select_related("placement")
    if placement is not None:
        rows = rows.filter(placement=placement)
    return rows.order_by("placement__key", "priority", "id")


def experience_get(*, experience_id: int) -> Experience | None:
    return Experience.objects.select_related("placement").filter(pk=experience_id).first()


# --- the active experiences, as decisions read them ------------------------------------------

VERSION_KEY = "experiences:version"


@dataclass(frozen=True)
class ActiveExperience:
    id: int
    name: str
    audience: Mapping[str, Any] | None
    page: list[Mapping[str, Any]]
    variants: list[Mapping[str, Any]]
    allocation: str
    bandit_shares: Mapping[str, float]
    holdout_percent: float
    starts_at: dt.datetime | None
    ends_at: dt.datetime | None
    reads_segments: bool

    @property
    def context_only(self) -> bool:
        """Targets by the page alone: no personal data decides who sees it."""
        return self.audience is None


@dataclass(frozen=True)
class ActivePlacement:
    id: int
    key: str
    default_content: Any
    experiences: list[ActiveExperience] = field(default_factory=list)


# This process's copy of every placement with its active experiences, under the version token
# it was read at, and when the token was last checked: a decision costs no query for them, and
# a cache read (the token) at most once per ACTIVE_CHECK_SECONDS. Any write to a placement or
# experience replaces the token (experiences.services.active_changed) and forgets this
# process's copy; other processes see it within ACTIVE_CHECK_SECONDS. Inside a transaction
# (tests run in one that is rolled back) the token is read every time.
ACTIVE_CHECK_SECONDS = 1.0
_ACTIVE: dict[str, tuple[str, float, dict[str, ActivePlacement]]] = {}
_LOCK = threading.Lock()


def active_forget() -> None:
    _ACTIVE.clear()


def active_version() -> str:
    token = cache.get(VERSION_KEY)
    if token is None:
        token = secrets.token_hex(8)
        cache.add(VERSION_KEY, token, timeout=None)
        token = cache.get(VERSION_KEY) or token
    return str(token)


def _active_load() -> dict[str, ActivePlacement]:
    from segments.conditions import walk

    placements = {
        p.pk: ActivePlacement(id=p.pk, key=p.key, default_content=p.default_content)
        for p in Placement.objects.all()
    }
    for e in Experience.objects.filter(status=Experience.Status.ACTIVE).order_by("priority", "id"):
        placements[e.placement_id].experiences.append(
            ActiveExperience(
                id=e.pk,
                name=e.name,
                audience=e.audience,
                page=list(e.page),
                variants=list(e.variants),
                allocation=e.allocation,
                bandit_shares=dict(e.bandit_shares),
                holdout_percent=e.holdout_percent,
                starts_at=e.starts_at,
                ends_at=e.ends_at,
                reads_segments=e.audience is not None
                and any("segment" in node for node in walk(e.audience)),
            )
        )
    return {p.key: p for p in placements.values()}


def active_placements() -> dict[str, ActivePlacement]:
    """Every placement by key with its active experiences in priority order (schedules are
    checked per decision)."""
    held = _ACTIVE.get("all")
    now = time.monotonic()
    if held is not None and now - held[1] < ACTIVE_CHECK_SECONDS and not connection.in_atomic_block:
        return held[2]
    version = active_version()
    if held is not None and held[0] == version:
        _ACTIVE["all"] = (version, now, held[2])
        return held[2]
    with _LOCK:
        loaded = _active_load()
        _ACTIVE["all"] = (version, now, loaded)
    return loaded


def experience_preview(
    *, experience: Experience, profile: Profile, page: Mapping[str, str], viewer: Any
) -> dict[str, Any]:
    """What this profile would see from this experience on this page, and why (no decision
    is recorded): each check in order, the arm (their recorded one, else the one they would
    get), and the content rendered for them."""
    now = timezone.now()
    segment_ids = set(
        SegmentMembership.objects.filter(profile=profile).values_list("segment_id", flat=True)
    )
    checks = [
        ("active", experience.status == Experience.Status.ACTIVE),
        ("scheduled now", definition.is_live(experience.starts_at, experience.ends_at, now)),
        ("page conditions hold", definition.page_matches(experience.page, page)),
        (
            "audience matches",
            definition.audience_matches(
                experience.audience,
                traits=profile.traits or {},
                computed={name: getattr(profile, name) for name in COMPUTED_FIELDS},
                segment_ids=segment_ids,
                now=now,
            ),
        ),
        ("personalization allowed", personalization_allowed(profile=profile)),
    ]
    recorded = Decision.objects.filter(profile=profile, experience=experience).first()
    if recorded is not None:
        holdout, variant = recorded.in_holdout, recorded.variant
    else:
        holdout = definition.in_holdout(
            experience_id=experience.pk,
            person=profile.pk,
            percent=experience.holdout_percent,
        )
        variant = definition.variant_pick(
            experience_id=experience.pk,
            person=profile.pk,
            variants=experience.variants,
            allocation=experience.allocation,
            bandit_shares=experience.bandit_shares,
        )
    chosen = next((v for v in experience.variants if v["name"] == variant), None)
    content = (
        experience.placement.default_content
        if holdout or chosen is None
        else definition.content_render(
            chosen["content"], render_context(profile=profile, page=page, viewer=viewer)
        )
    )
    return {
        "checks": checks,
        "shown": all(ok for _, ok in checks),
        "recorded": recorded is not None,
        "holdout": holdout,
        "variant": variant,
        "content": content,
    }


@dataclass(frozen=True)
class Recorded:
    decision_id: str
    variant: str
    in_holdout: bool


@dataclass(frozen=True)
class Visitor:
    """What a decision reads about a person: their traits and computed columns, segment
    memberships (when an experience asks), recorded arms in the candidate experiences, and
    the consent gate's answers (consent.selectors.consent_allows for `personalization`)."""

    id: int
    traits: Mapping[str, Any]
    computed: Mapping[str, Any]
    segment_ids: frozenset[int]
    recorded: Mapping[int, Recorded]
    personalization_allowed: bool
    suppressed: bool


def render_context(
    *, profile: Profile | Visitor | None, page: Mapping[str, str], viewer: Any
) -> dict[str, Any]:
    """What content templates see (experiences.definition). Traits pass the PII gate as
    `viewer` may see them: a browser asking /v1/decide (no viewer) gets personal traits
    masked; the preview page shows what its staff user may see. A visitor without a profile
    (context-only targeting) sees an empty profile."""
    if profile is None:
        return {
            "profile": {"id": None, "traits": {}, "computed": {}},
            "page": {name: page.get(name, "") for name in definition.PAGE_FIELDS},
        }
    computed = (
        profile.computed
        if isinstance(profile, Visitor)
        else {name: getattr(profile, name) for name in COMPUTED_FIELDS}
    )
    return {
        "profile": {
            "id": profile.id,
            "traits": pii_for(viewer).traits(profile.traits or {}),
            "computed": dict(computed),
        },
        "page": {name: page.get(name, "") for name in definition.PAGE_FIELDS},
    }


@functools.cache
def _visitor_sql(where: str) -> str:
    """One statement answering everything a decision reads about a person (PostgreSQL)."""
    allowed, suppressed, _ = consent_allows_sql(purpose=PERSONALIZATION, profile_id_sql="p.id")
    columns = ", ".join(f"p.{name}" for name in COMPUTED_FIELDS)
    return (
        f"SELECT p.id, p.merged_into_id, p.traits, {columns}, "  # noqa: S608
        f"CASE WHEN %s THEN ARRAY(SELECT segment_id FROM {SegmentMembership._meta.db_table} "
        "WHERE profile_id = p.id) END, "
        "ARRAY(SELECT json_build_array(experience_id, decision_id::text, variant, in_holdout) "
        f"FROM {Decision._meta.db_table} WHERE profile_id = p.id AND experience_id = ANY(%s)), "
        f"{allowed}, {suppressed} {where}"
    )


_BY_IDENTIFIER = (
    f"FROM {Identity._meta.db_table} i JOIN {Profile._meta.db_table} p ON p.id = i.profile_id "
    "WHERE i.kind = %s AND i.value = %s LIMIT 1"
)
_BY_ID = f"FROM {Profile._meta.db_table} p WHERE p.id = %s"


# The visitor's statement is prepared once per database connection: planning it cost about
# three times its execution (~0.4 ms of database CPU per decision, on every page view).
# Prepared statements live as long as the session (a rollback keeps them). A transaction
# pooler (PgBouncer in transaction mode) may run EXECUTE on a connection that never saw the
# PREPARE: then this process goes back to plain statements for good.
_PREPARED = {_BY_IDENTIFIER: "decide_visitor_by_identifier", _BY_ID: "decide_visitor_by_id"}
_prepare = True


def _visitor_execute(cursor: Any, where: str, params: list[Any]) -> None:
    global _prepare
    if not _prepare:
        cursor.execute(_visitor_sql(where), params)
        return
    raw = connection.connection
    held: tuple[Any, set[str]] | None = getattr(connection, "_decide_prepared", None)
    if held is None or held[0] is not raw:  # a new connection: nothing prepared on it yet
        held = (raw, set())
        connection._decide_prepared = held  # type: ignore[attr-defined]
    name = _PREPARED[where]
    execute = f"EXECUTE {name}({', '.join(['%s'] * len(params))})"
    try:
        if name not in held[1]:
            numbered = _visitor_sql(where).split("%s")
            statement = numbered[0] + "".join(
                f"${index}{part}" for index, part in enumerate(numbered[1:], start=1)
            )
            cursor.execute(f"PREPARE {name} AS {statement}")
            held[1].add(name)
        cursor.execute(execute, params)
    except DatabaseError as error:
        if connection.in_atomic_block:
            raise
        if isinstance(error.__cause__, psycopg2.errors.DuplicatePreparedStatement):
            held[1].add(name)  # the session has it already (prepared before we kept count)
            cursor.execute(execute, params)
        elif isinstance(error.__cause__, psycopg2.errors.InvalidSqlStatementName):
            _prepare = False
            cursor.execute(_visitor_sql(where), params)
        else:
            raise


def _visitor_row(
    where: str, where_params: list[Any], experience_ids: list[int], with_segments: bool
) -> tuple[int | None, Visitor] | None:
    """(merged_into_id, the visitor as the row says), or None when no row."""
    with connection.cursor() as cursor:
        _visitor_execute(
            cursor, where, [with_segments, experience_ids, PERSONALIZATION, *where_params]
        )
        row = cursor.fetchone()
    if row is None:
        return None
    profile_id, merged_into, traits = row[:3]
    count = len(COMPUTED_FIELDS)
    segment_ids, decisions, allowed, suppressed = row[3 + count :]
    if allowed is None:  # the purpose is missing from its table: the gate restores it
        allowed = consent_allows(profile=profile_id, purpose=PERSONALIZATION)
    return merged_into, Visitor(
        id=profile_id,
        traits=json_column(traits) or {},
        computed=dict(zip(COMPUTED_FIELDS, row[3 : 3 + count], strict=True)),
        segment_ids=frozenset(segment_ids or ()),
        recorded={e: Recorded(d, v, h) for e, d, v, h in map(json_column, decisions)},
        personalization_allowed=bool(allowed),
        suppressed=bool(suppressed),
    )


def _visitor_row_checked(
    where: str, where_params: list[Any], experience_ids: list[int], with_segments: bool
) -> tuple[int | None, Visitor] | None:
    """`_visitor_row`, the read itself standing for Django's connection health check
    (CONN_HEALTH_CHECKS), which would send `SELECT 1` before a request's first statement: a
    round trip as long as the decision's own, on every page view. A kept connection the read
    finds dead is replaced and the read sent again, as the health check would have done; a
    failure on a live connection (a cancelled statement) is the caller's."""
    # Django's own attributes for the check (its stubs do not declare them).
    checking = (
        connection.connection is not None
        and getattr(connection, "health_check_enabled", False)
        and not getattr(connection, "health_check_done", True)
        and not connection.in_atomic_block
    )
    if checking:
        connection.health_check_done = True  # type: ignore[attr-defined]
    try:
        return _visitor_row(where, where_params, experience_ids, with_segments)
    except (OperationalError, InterfaceError):
        if not checking or connection.is_usable():
            raise
        connection.close()
    return _visitor_row(where, where_params, experience_ids, with_segments)


def visitor_get(
    *,
    profile_id: int | None = None,
    identifier: tuple[str, str] | None = None,
    experience_ids: list[int],
    with_segments: bool,
) -> Visitor | None:
    """The person (by profile id, or by an already normalised (kind, value) identifier,
    followed to the survivor of a merge) as a decision reads them: one round trip on
    PostgreSQL for the usual case (a profile not merged away), the consent gate included,
    since a decision is on every page view's path. None: nobody is known by it."""
    if connection.vendor != "postgresql":
        return _visitor_orm(
            profile_id=profile_id,
            identifier=identifier,
            experience_ids=experience_ids,
            with_segments=with_segments,
        )
    if identifier is not None:
        found = _visitor_row_checked(
            _BY_IDENTIFIER, list(identifier), experience_ids, with_segments
        )
    else:
        found = _visitor_row_checked(_BY_ID, [profile_id], experience_ids, with_segments)
    if found is None:
        return None
    merged_into, visitor = found
    if merged_into is None:
        return visitor
    survivor = profile_current(profile=Profile(pk=visitor.id, merged_into_id=merged_into))
    found = _visitor_row(_BY_ID, [survivor.pk], experience_ids, with_segments)
    return found[1] if found is not None else None


def _visitor_orm(
    *,
    profile_id: int | None,
    identifier: tuple[str, str] | None,
    experience_ids: list[int],
    with_segments: bool,
) -> Visitor | None:
    """`visitor_get` on other databases (SQLite for a newcomer's first run), query by query."""
    if identifier is not None:
        profile = profile_by_identity(kind=identifier[0], value=identifier[1])
    else:
        profile = Profile.objects.filter(pk=profile_id or 0).first()
    if profile is None:
        return None
    profile = profile_current(profile=profile)
    segment_ids = (
        SegmentMembership.objects.filter(profile=profile).values_list("segment_id", flat=True)
        if with_segments
        else []
    )
    rows = Decision.objects.filter(profile=profile, experience_id__in=experience_ids)
    return Visitor(
        id=profile.pk,
        traits=profile.traits or {},
        computed={name: getattr(profile, name) for name in COMPUTED_FIELDS},
        segment_ids=frozenset(segment_ids),
        recorded={
            e: Recorded(str(d), v, h)
            for e, d, v, h in rows.values_list(
                "experience_id", "decision_id", "variant", "in_holdout"
            )
        },
        personalization_allowed=consent_allows(profile=profile, purpose=PERSONALIZATION),
        suppressed=profile_is_suppressed(profile=profile),
    )


# --- results ---------------------------------------------------------------------------------


@dataclass
class _Person:
    arm: str
    decided_at: dt.datetime
    viewed: bool = False
    clicked: bool = False
    converted_at: dt.datetime | None = None


@dataclass
class _Activity:
    """Experience Viewed / Clicked events per arm: in all, and per day (UTC) they happened."""

    impressions: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    clicks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    days: dict[str, list[tuple[str, dt.date]]] = field(default_factory=lambda: defaultdict(list))


def _people(experience: Experience) -> tuple[dict[int, _Person], _Activity]:
    """Each decided person's arm and outcomes; impressions and clicks (events) per arm.

    A decision left on a merged-away profile (experiences.hooks: its person kept an earlier
    one) is no person: the events sent with its id count to the arm they showed, and the
    person counts once, in the arm they kept."""
    people: dict[int, _Person] = {}
    arm_of: dict[str, tuple[int | None, str]] = {}
    first: dt.datetime | None = None
    for decision_id, profile_id, variant, holdout, at, merged_into in Decision.objects.filter(
        experience=experience
    ).values_list(
        "decision_id", "profile_id", "variant", "in_holdout", "decided_at", "profile__merged_into"
    ):
        arm = HOLDOUT if holdout else variant
        if merged_into is None:
            people[profile_id] = _Person(arm, at)
        arm_of[str(decision_id)] = (profile_id if merged_into is None else None, arm)
        first = at if first is None else min(first, at)
    activity = _Activity()
    if first is None:
        return people, activity
    rows = (
        Event.objects.filter(event__in=[VIEWED, CLICKED], timestamp__gte=first)
        .annotate(decision=KT("properties__decision_id"))
        .filter(decision__in=list(arm_of))
        .values_list("event", "decision", "timestamp")
    )
    for name, decision, at in rows.iterator(chunk_size=2000):
        holder, arm = arm_of[decision]
        person = people.get(holder) if holder is not None else None
        if name == VIEWED:
            activity.impressions[arm] += 1
            if person is not None:
                person.viewed = True
        else:
            activity.clicks[arm] += 1
            if person is not None:
                person.clicked = True
        activity.days[arm].append((name, at.astimezone(dt.UTC).date()))
    goal = experience.goal_event
    if goal:
        for profile_id, at in (
            Event.objects.filter(profile_id__in=list(people), event=goal, timestamp__gte=first)
            .order_by("timestamp")
            .values_list("profile_id", "timestamp")
            .iterator(chunk_size=2000)
        ):
            person = people[profile_id]
            if at >= person.decided_at and person.converted_at is None:
                person.converted_at = at
    return people, activity


def _converted(person: _Person, *, has_goal: bool) -> bool:
    return person.converted_at is not None if has_goal else person.clicked


def arm_counts(*, experience: Experience) -> dict[str, tuple[int, int]]:
    """{variant: (people assigned, people converted)}: the bandit's posteriors read these (a
    conversion is the goal event after the decision, or a click without a goal)."""
    people, _ = _people(experience)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for person in people.values():
        if person.arm != HOLDOUT:
            counts[person.arm][0] += 1
            counts[person.arm][1] += _converted(person, has_goal=bool(experience.goal_event))
    return {arm: (pair[0], pair[1]) for arm, pair in counts.items()}


def experience_results(*, experience: Experience, now: dt.datetime | None = None) -> dict[str, Any]:
    """Per arm (each variant, and the holdout when there is one): people assigned, who
    viewed, impressions, clicks, conversions, the rate with its 95% confidence sequence,
    lift and always-valid p-value against the baseline (the holdout, else the first variant),
    and the probability of being best; and its series, per day (UTC) from the first decision
    to `now`: cumulative people assigned and converted, the rate so far with its confidence
    sequence, and that day's impressions and clicks.
    The statistics are campaigns.stats', as in campaign results."""
    now = now or timezone.now()
    people, activity = _people(experience)
    has_goal = bool(experience.goal_event)
    names = experience.variant_names
    seen = {p.arm for p in people.values()} - {HOLDOUT}
    keys = names + sorted(seen - set(names))
    if experience.holdout_percent > 0 or any(p.arm == HOLDOUT for p in people.values()):
        keys.append(HOLDOUT)
    baseline = HOLDOUT if HOLDOUT in keys else keys[0]
    days = _days(people, now)
    arms: dict[str, dict[str, Any]] = {}
    for key in keys:
        members = [p for p in people.values() if p.arm == key]
        assigned = len(members)
        converted = sum(_converted(p, has_goal=has_goal) for p in members)
        arms[key] = {
            "name": key,
            "assigned": assigned,
            "viewed": sum(p.viewed for p in members),
            "impressions": activity.impressions.get(key, 0),
            "clicks": activity.clicks.get(key, 0),
            "clicked": sum(p.clicked for p in members),
            "converted": converted,
            "conversion_rate": converted / assigned if assigned else None,
            "ci95": list(stats.rate_interval(converted, assigned)),
            "lift": None,
            "p_value": None,
            "probability_best": None,
            "series": _series(members, days, has_goal=has_goal)
            | _activity_series(activity, key, days),
        }
    for key in keys:
        if key == baseline or not days:
            continue
        arms[key]["lift"] = stats.relative_lift(
            arms[key]["conversion_rate"], arms[baseline]["conversion_rate"]
        )
        base, this = arms[baseline]["series"], arms[key]["series"]
        path = stats.always_valid_p(
            base["converted"], base["assigned"], this["converted"], this["assigned"]
        )
        arms[key]["p_value"] = float(path[-1])
    if any(arms[key]["assigned"] for key in keys):
        best = stats.probability_best(
            *stats.beta_posteriors(
                [arms[k]["converted"] for k in keys], [arms[k]["assigned"] for k in keys]
            )
        )
        for index, key in enumerate(keys):
            arms[key]["probability_best"] = float(best[index])
    return {
        "experience": experience.pk,
        "goal": experience.goal_event or CLICKED,
        "baseline": baseline,
        "days": [day.isoformat() for day in days],
        "arms": [arms[key] for key in keys],
        "bandit_shares": dict(experience.bandit_shares),
    }


def _days(people: Mapping[int, _Person], now: dt.datetime) -> list[dt.date]:
    if not people:
        return []
    start = min(p.decided_at for p in people.values()).astimezone(dt.UTC).date()
    end = now.astimezone(dt.UTC).date()
    return [start + dt.timedelta(days=d) for d in range((end - start).days + 1)]


def _series(members: list[_Person], days: list[dt.date], *, has_goal: bool) -> dict[str, Any]:
    """Cumulative people assigned and converted per day (UTC), the looks of the test, and the
    rate on each day with its confidence sequence (valid however often it is looked at)."""
    assigned = np.zeros(len(days), dtype=int)
    converted = np.zeros(len(days), dtype=int)
    if days:
        start = days[0]
        for person in members:
            entered = person.decided_at.astimezone(dt.UTC).date()
            assigned[min((entered - start).days, len(days) - 1)] += 1
            if _converted(person, has_goal=has_goal):
                moment = person.converted_at if has_goal and person.converted_at else None
                day = max(moment.astimezone(dt.UTC).date(), entered) if moment else entered
                converted[min((day - start).days, len(days) - 1)] += 1
    n, x = assigned.cumsum(), converted.cumsum()
    bands = [stats.rate_interval(int(a), int(b)) for a, b in zip(x, n, strict=True)]
    return {
        "assigned": n.tolist(),
        "converted": x.tolist(),
        "rate": [float(a / b) if b else None for a, b in zip(x, n, strict=True)],
        "low": [low for low, _ in bands],
        "high": [high for _, high in bands],
    }


def _activity_series(activity: _Activity, arm: str, days: list[dt.date]) -> dict[str, Any]:
    """The arm's impressions and clicks per day (an event stamped after the last day, by a
    client's clock, counts on the last day)."""
    counts = {VIEWED: np.zeros(len(days), dtype=int), CLICKED: np.zeros(len(days), dtype=int)}
    if days:
        for name, day in activity.days.get(arm, []):
            counts[name][min(max((day - days[0]).days, 0), len(days) - 1)] += 1
    return {"impressions": counts[VIEWED].tolist(), "clicks": counts[CLICKED].tolist()}
