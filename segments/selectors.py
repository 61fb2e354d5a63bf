"""Reads: segment lists, live counts of unsaved definitions, materialised members, the facts
the reference evaluator needs for one profile, and autocomplete vocabularies."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from access.pii import pii_for
from consent import selectors as consent_selectors
from identity.models import Identity, IdentityKind
from profiles.features import COMPUTED_FIELDS
from profiles.models import Event, Profile
from segments import conditions
from segments.compiler import base_profiles, compile_definition
from segments.ml.drift import drift_status
from segments.models import (
    MembershipChange,
    ModelDrift,
    ModelRun,
    ProfileScore,
    Segment,
    SegmentMembership,
    SegmentSnapshot,
)

EXPLAIN_EVENT_LIMIT = 5000


def segment_list(*, include_archived: bool = False) -> QuerySet[Segment]:
    qs = Segment.objects.select_related("created_by")
    if not include_archived:
        qs = qs.filter(status=Segment.Status.ACTIVE)
    return qs.order_by("name", "id")


def segment_get(*, segment_id: int) -> Segment | None:
    return Segment.objects.filter(pk=segment_id).first()


def definition_resolver(*, exclude: int | None = None) -> Callable[[int], Mapping[str, Any] | None]:
    """A lookup of saved definitions by segment id (loaded lazily, once per id)."""
    loaded: dict[int, Mapping[str, Any] | None] = {}

    def resolve(segment_id: int) -> Mapping[str, Any] | None:
        if segment_id not in loaded:
            row = Segment.objects.filter(pk=segment_id).values_list("definition", flat=True).first()
            loaded[segment_id] = row
        return loaded[segment_id]

    return resolve


def consent_purpose_known(code: str) -> bool:
    try:
        consent_selectors.purpose_get(code=code)
    except consent_selectors.UnknownPurposeError:
        return False
    return True


def definition_q(
    definition: Mapping[str, Any],
    *,
    now: dt.datetime,
    profile_ids: Collection[int] | None = None,
) -> Q:
    return compile_definition(
        definition,
        now=now,
        segments=definition_resolver(),
        profile_ids=profile_ids,
    )


# Segment-wide queries (counts, previews, full refreshes) aggregate events of every profile at
# once: the per-profile counts of a 10M-event table take ~25 MB, so with the 4 MB default the
# hash aggregate spills to disk in every parallel worker. JIT compilation costs more (0.1-0.4 s)
# than it saves on these sub-second statements. SET LOCAL ends with the transaction.
ANALYTICAL_SETTINGS = ("SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off")


@contextmanager
def analytical_transaction() -> Iterator[None]:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for statement in ANALYTICAL_SETTINGS:
                    cursor.execute(statement)
        yield


def definition_count(definition: Mapping[str, Any], *, now: dt.datetime | None = None) -> int:
    """How many profiles satisfy an (already validated) definition now."""
    with analytical_transaction():
        return definition_profiles(definition, now=now).count()


def definition_profiles(
    definition: Mapping[str, Any], *, now: dt.datetime | None = None
) -> QuerySet[Profile]:
    """Profiles that satisfy an (already validated) definition now, computed live."""
    now = now or timezone.now()
    return base_profiles().filter(definition_q(definition, now=now))


@dataclass(frozen=True)
class Preview:
    count: int
    sample: list[Profile]


def definition_preview(definition: Mapping[str, Any], *, sample_size: int = 10) -> Preview:
    profiles = definition_profiles(definition)
    sample = list(
        profiles.order_by("-last_seen", "-id").prefetch_related("identities")[:sample_size]
    )
    with analytical_transaction():
        count = profiles.count()
    return Preview(count=count, sample=sample)


def segment_members(*, segment: Segment) -> QuerySet[Profile]:
    """The materialised members, with identities prefetched for serializers."""
    return Profile.objects.filter(segment_memberships__segment=segment).prefetch_related(
        Prefetch("identities", queryset=Identity.objects.order_by("kind", "value"))
    )


def segment_size(*, segment: Segment) -> int:
    return SegmentMembership.objects.filter(segment=segment).count()


def profile_segments(*, profile: Profile) -> QuerySet[SegmentMembership]:
    return (
        SegmentMembership.objects.filter(profile=profile)
        .select_related("segment")
        .order_by("segment__name", "segment_id")
    )


def segment_history(*, segment: Segment, limit: int = 50) -> QuerySet[MembershipChange]:
    return MembershipChange.objects.filter(segment=segment).order_by("-at", "-id")[:limit]


def segment_snapshots(*, segment: Segment, limit: int = 500) -> list[SegmentSnapshot]:
    rows = SegmentSnapshot.objects.filter(segment=segment).order_by("-at")[:limit]
    return list(reversed(rows))


def segments_using(*, segment_id: int) -> list[Segment]:
    """Active segments whose definitions refer to `segment_id` directly."""
    return [
        s
        for s in Segment.objects.filter(status=Segment.Status.ACTIVE).exclude(pk=segment_id)
        if segment_id in conditions.referenced_segments(s.definition)
    ]


def profile_facts(*, profile: Profile) -> conditions.ProfileFacts:
    """Everything the reference evaluator needs about one profile."""
    events = [
        conditions.EventFact(id=e[0], name=e[1], timestamp=e[2], properties=e[3] or {})
        for e in Event.objects.filter(profile=profile)
        .order_by("-timestamp", "-id")
        .values_list("id", "event", "timestamp", "properties")[:EXPLAIN_EVENT_LIMIT]
    ]
    computed = {field: getattr(profile, field) for field in COMPUTED_FIELDS}
    scores = dict(ProfileScore.objects.filter(profile=profile).values_list("kind", "value"))
    consents = {
        row["purpose"]
        for row in consent_selectors.consent_current_state(profile=profile)
        if row["granted"]
    }
    return conditions.ProfileFacts(
        id=profile.pk,
        traits=profile.traits or {},
        computed=computed,
        events=events,
        identifiers=set(Identity.objects.filter(profile=profile).values_list("kind", flat=True)),
        consents=consents,
        scores=scores,
    )


def segment_explain(
    *, segment: Segment, profile: Profile, viewer: Any, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Why `profile` is in or out of `segment`, from the reference evaluator; the values of
    PII traits shown as `viewer` may see them (access.pii)."""
    now = now or timezone.now()
    facts = profile_facts(profile=profile)
    pii = pii_for(viewer)

    tree = conditions.explain(
        segment.definition,
        facts,
        now=now,
        segments=definition_resolver(),
        show=lambda trait, value: conditions.short_repr(pii.trait_value(trait, value)),
    )
    member = SegmentMembership.objects.filter(segment=segment, profile=profile).exists()
    return {"tree": tree, "matches_now": tree["result"], "member": member, "now": now}


def model_runs(*, kind: str | None = None, limit: int = 20) -> QuerySet[ModelRun]:
    qs = ModelRun.objects.defer("artifact")
    if kind:
        qs = qs.filter(kind=kind)
    return qs.order_by("-created_at", "-id")[:limit]


def active_model(*, kind: str) -> ModelRun | None:
    return ModelRun.objects.filter(kind=kind, is_active=True).first()


PROPENSITY_KINDS = (ModelRun.Kind.PURCHASE_30D, ModelRun.Kind.CHURN)


def propensity_drift(*, days: int = 90) -> dict[str, Any]:
    """The drift of the serving propensity runs for the models page: `rows`, one per kind
    with its serving run and that run's latest check read by segments.ml.drift.drift_status
    at MODEL_DRIFT_PSI_THRESHOLD (None before the first check); and `chart`, every check of
    the last `days` as Chart.js line data (one line per kind, one point per day)."""
    threshold = settings.MODEL_DRIFT_PSI_THRESHOLD
    since = timezone.now().date() - dt.timedelta(days=days)
    checks = list(
        ModelDrift.objects.filter(run__kind__in=PROPENSITY_KINDS, day__gte=since)
        .select_related("run")
        .only("run__kind", "run__is_active", "day", "psi", "scored", "run_id")
        .order_by("day", "run_id")
    )
    latest = {check.run.kind: check for check in checks if check.run.is_active}
    names = dict(ModelRun.Kind.choices)
    serving = {
        run.kind: run
        for run in ModelRun.objects.filter(kind__in=PROPENSITY_KINDS, is_active=True).only("kind")
    }
    rows = [
        {
            "kind": kind,
            "label": names[kind],
            "run": serving.get(kind),
            "check": latest.get(kind),
            "status": drift_status(latest[kind].psi, threshold=threshold)
            if kind in latest
            else None,
        }
        for kind in PROPENSITY_KINDS
    ]
    labels = sorted({check.day for check in checks})
    by_kind: dict[str, dict[dt.date, float]] = {}
    for check in checks:  # a day's newest run wins (ordered by run)
        by_kind.setdefault(check.run.kind, {})[check.day] = check.psi
    chart = {
        "labels": [day.isoformat() for day in labels],
        "datasets": [
            {"label": names[kind], "data": [values.get(day) for day in labels]}
            for kind, values in sorted(by_kind.items())
        ],
    }
    return {"rows": rows, "chart": chart, "threshold": threshold}


def profiles_model_scores(profiles: Collection[Profile]) -> dict[int, dict[str, Any]]:
    """The serving models' outputs per profile, in the shape of the profile API's `computed`
    (`propensity`, `predicted_lifetime_value`, `cluster` with its name): one query, and one
    more for the cluster names when a profile has a cluster."""
    rows = ProfileScore.objects.filter(profile__in=[p.pk for p in profiles]).values_list(
        "profile_id", "kind", "value"
    )
    found: dict[int, dict[str, Any]] = {}
    names: dict[int, str] | None = None
    for profile_id, kind, value in rows:
        extra = found.setdefault(profile_id, {"propensity": {"purchase_30d": None, "churn": None}})
        if kind in (ProfileScore.Kind.PURCHASE_30D, ProfileScore.Kind.CHURN):
            extra["propensity"][kind] = round(value, 4)
        elif kind == ProfileScore.Kind.PREDICTED_LTV:
            extra["predicted_lifetime_value"] = round(value, 2)
        elif kind == ProfileScore.Kind.CLUSTER:
            if names is None:
                names = cluster_names()
            extra["cluster"] = {"id": int(value), "name": names.get(int(value), "")}
    return found


@dataclass(frozen=True)
class ProfileAudience:
    """What the profile page shows of a person's audience: segments, scores and consent."""

    memberships: list[SegmentMembership]
    scores: dict[str, Any]
    consents: list[dict[str, Any]]
    revenue_note: str


def profile_audience(*, profile: Profile) -> ProfileAudience:
    names = {purpose.code: purpose.name for purpose in consent_selectors.purposes_all()}
    consents = [
        {**row, "name": names.get(row["purpose"], row["purpose"])}
        for row in consent_selectors.consent_current_state(profile=profile)
    ]
    return ProfileAudience(
        memberships=list(profile_segments(profile=profile)),
        scores=profiles_model_scores([profile]).get(profile.pk, {}),
        consents=consents,
        revenue_note=_revenue_note(profile, consents),
    )


def _revenue_note(profile: Profile, consents: list[dict[str, Any]]) -> str:
    """Why a profile shows no revenue, when consent is the reason: without `analytics` the
    pipeline strips order amounts ("minimal") or drops the orders ("drop")."""
    if profile.revenue or any(c["granted"] for c in consents if c["purpose"] == "analytics"):
        return ""
    policy = settings.CONSENT_WITHOUT_ANALYTICS
    if policy == "minimal" and profile.order_count:
        return (
            f"Revenue is 0 because consent stripped its events: this person has not consented "
            f"to analytics, so the amounts of their {profile.order_count} order"
            f"{'s' if profile.order_count != 1 else ''} were not kept."
        )
    if policy == "drop" and profile.event_count:
        return (
            "Revenue is 0 because consent dropped its events: this person has not consented to "
            "analytics, so their orders were not kept."
        )
    return ""


def cluster_names() -> dict[int, str]:
    """The serving clustering's cluster names (a description until a marketer names one)."""
    run = ModelRun.objects.filter(kind=ModelRun.Kind.CLUSTER, is_active=True).only("summary")
    summary = run[0].summary if run else []
    return {row["id"]: row.get("name") or row["description"] for row in summary}


# --- Autocomplete vocabularies (sampled, cached: they guide, they do not validate) ----------

VOCAB_TTL = 300
VOCAB_SAMPLE = 2000


def _flatten_keys(data: Mapping[str, Any], prefix: str = "", depth: int = 0) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and depth < 2:
            found.update(_flatten_keys(value, path + ".", depth + 1))
        else:
            found[path] = conditions.json_type(value)
    return found


def observed_trait_keys() -> dict[str, str]:
    """Trait paths seen on recent profiles -> their JSON type, the most common first (what the
    builder offers first)."""
    cached = cache.get("segments:vocab:traits")
    if cached is None:
        kinds: dict[str, str] = {}
        seen: Counter[str] = Counter()
        for traits in Profile.objects.order_by("-id").values_list("traits", flat=True)[
            :VOCAB_SAMPLE
        ]:
            for path, kind in _flatten_keys(traits or {}).items():
                if _safe_path(path):
                    kinds.setdefault(path, kind)
                    seen[path] += 1
        cached = {
            path: kinds[path] for path, _ in sorted(seen.items(), key=lambda i: (-i[1], i[0]))
        }
        cache.set("segments:vocab:traits", cached, VOCAB_TTL)
    return cached


# The builder's first condition: on the first of these keys the profiles have (Segment's spec
# puts the country under `address`), its most common value; else the most common text trait.
STARTER_TRAITS = ("address.country", "country", "plan")


def starter_definition() -> dict[str, Any]:
    """A first condition that matches people on this workspace's data: a new builder opens
    with a live count above zero rather than a guess that matches nobody."""
    text_keys = [path for path, kind in observed_trait_keys().items() if kind == "string"]
    preferred = [key for key in STARTER_TRAITS if key in text_keys]
    if not text_keys:
        return {"all": [{"has_identifier": "email"}]}
    key = (preferred or text_keys)[0]
    values: Counter[str] = Counter()
    for traits in Profile.objects.order_by("-id").values_list("traits", flat=True)[:VOCAB_SAMPLE]:
        value: Any = traits or {}
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value:
            values[value] += 1
    if not values:
        return {"all": [{"trait": key, "op": "exists"}]}
    return {"all": [{"trait": key, "op": "eq", "value": values.most_common(1)[0][0]}]}


def observed_event_names() -> list[str]:
    cached = cache.get("segments:vocab:events")
    if cached is None:
        recent = Event.objects.exclude(event="").order_by("-id").values_list("event", flat=True)
        cached = sorted(set(recent[: VOCAB_SAMPLE * 5]))[:500]
        cache.set("segments:vocab:events", cached, VOCAB_TTL)
    return cached


def observed_event_properties(*, event: str) -> dict[str, str]:
    key = f"segments:vocab:props:{hash(event)}"
    cached = cache.get(key)
    if cached is None:
        cached = {}
        rows = (
            Event.objects.filter(event=event).order_by("-id").values_list("properties", flat=True)
        )
        for props in rows[:VOCAB_SAMPLE]:
            for path, kind in _flatten_keys(props or {}).items():
                if _safe_path(path):
                    cached.setdefault(path, kind)
        cached = dict(sorted(cached.items()))
        cache.set(key, cached, VOCAB_TTL)
    return cached


def _safe_path(path: str) -> bool:
    return re.match(conditions.PATH_PATTERN, path) is not None


def identifier_kinds() -> list[str]:
    return sorted(
        {*IdentityKind.values, *Identity.objects.values_list("kind", flat=True).distinct()[:50]}
    )


def builder_vocabulary(*, exclude: int | None = None) -> dict[str, Any]:
    """What the condition builder offers (segments' builder, campaigns' branch conditions and
    event filters): known traits with their types, event names, identifier kinds, the other
    segments and the computed features, each once."""
    return {
        "traits": observed_trait_keys(),
        "events": observed_event_names(),
        "identifiers": identifier_kinds(),
        "segments": [[s.pk, s.name] for s in segment_list() if s.pk != exclude],
        "computed": [
            [
                name,
                conditions.COMPUTED_WORDS[name],
                "date"
                if name in conditions.DATETIME_COMPUTED
                else "recency"
                if name == "recency"
                else "numeric",
            ]
            for name in _offered_computed()
        ],
    }


def _offered_computed() -> list[str]:
    """One name per computed column: "frequency" and "order_count" are the same number of
    orders, "monetary", "revenue" and "lifetime_value" the same revenue. Definitions may still
    use every name; the builder offers each figure once."""
    offered, columns = [], set()
    for name in conditions.COMPUTED:
        column = conditions.NUMERIC_COMPUTED.get(name) or conditions.DATETIME_COMPUTED.get(name)
        if column is not None and column in columns:
            continue
        columns.add(column or name)
        offered.append(name)
    return offered
