"""Reads: the catalog, item imports, training runs, and the interactions models learn from
(recommendation answers are in `serving`).

Interactions reach a model or a person's list only through the `personalization` consent
gate (`consent.selectors`): `training_data` and `profile_history` are the two doors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from consent.selectors import consent_allows, consent_allows_sql, consent_profiles_allowed
from identity.models import Identity
from identity.selectors import profile_by_identity
from profiles.models import Event, Profile
from profiles.selectors import json_column, profile_survivor
from recommendations.catalog import CATEGORY_SEPARATOR
from recommendations.interactions import naive_utc
from recommendations.models import (
    Interaction,
    InteractionKind,
    Item,
    ItemImport,
    ModelDrift,
    ModelRun,
    RuleSet,
)
from recommendations.recommenders.base import TrainingData
from recommendations.recommenders.popularity import trend_scores
from recommendations.rules import DEVICES
from segments.ml.drift import drift_status
from segments.models import Segment
from segments.selectors import segment_members

PERSONALIZATION = "personalization"


@dataclass(frozen=True)
class ItemFilters:
    q: str = ""
    category: str = ""
    brand: str = ""
    availability: str = ""
    price_min: Decimal | None = None
    price_max: Decimal | None = None


def item_list(*, filters: ItemFilters | None = None) -> QuerySet[Item]:
    """Items matching every filter given: `q` in the title or id, `category` as the path or
    any path under it, `brand` exactly, price bounds inclusive."""
    filters = filters or ItemFilters()
    items = Item.objects.all()
    if filters.q:
        items = items.filter(Q(title__icontains=filters.q) | Q(external_id=filters.q))
    if filters.category:
        items = items.filter(
            Q(category=filters.category)
            | Q(category__startswith=filters.category + CATEGORY_SEPARATOR)
        )
    if filters.brand:
        items = items.filter(brand=filters.brand)
    if filters.availability:
        items = items.filter(availability=filters.availability)
    if filters.price_min is not None:
        items = items.filter(price__gte=filters.price_min)
    if filters.price_max is not None:
        items = items.filter(price__lte=filters.price_max)
    return items


def item_get(*, external_id: str) -> Item | None:
    return Item.objects.filter(external_id=external_id).first()


def item_import_get(*, job_id: int) -> ItemImport | None:
    return ItemImport.objects.filter(pk=job_id).first()


def model_runs() -> QuerySet[ModelRun]:
    return ModelRun.objects.defer("artifact").select_related("requested_by")


def serving_run() -> ModelRun | None:
    return model_runs().filter(is_serving=True).first()


def model_run_get(*, run_id: int) -> ModelRun | None:
    return model_runs().filter(pk=run_id).first()


def rule_set_current() -> RuleSet | None:
    return RuleSet.objects.order_by("-version").first()


def personalization_allowed(*, profile: Profile) -> bool:
    return consent_allows(profile=profile, purpose=PERSONALIZATION)


@dataclass(frozen=True)
class Subject:
    """Whom a list asked for by profile id is for, as serving needs it before its cache: the
    profile the asked one lives on (merges followed) and whether it allows personalization."""

    profile_id: int
    personalization_allowed: bool


_BY_ID = f"FROM {Profile._meta.db_table} p WHERE p.id = %s"
_BY_IDENTITY = (
    f"FROM {Identity._meta.db_table} i JOIN {Profile._meta.db_table} p ON p.id = i.profile_id "
    "WHERE i.kind = %s AND i.value = %s LIMIT 1"
)


@functools.cache
def _subject_sql(where: str) -> str:
    allowed, _, _ = consent_allows_sql(purpose=PERSONALIZATION, profile_id_sql="p.id")
    return f"SELECT p.id, p.merged_into_id, {allowed} {where}"


def serving_subject(*, profile_id: int) -> Subject | None:
    """None for no such profile. One query on PostgreSQL for a profile not merged away (every
    cached answer asks this first)."""
    return _subject(_BY_ID, [profile_id], lambda: Profile.objects.filter(pk=profile_id).first())


def serving_subject_by_identity(*, kind: str, value: str) -> Subject | None:
    """`serving_subject` of the profile an exact identifier belongs to (None: nobody has it
    yet), in the same one query: a shop's front end asks lists by identifier."""
    return _subject(
        _BY_IDENTITY, [kind, value], lambda: profile_by_identity(kind=kind, value=value)
    )


def _subject(
    where: str, params: list[Any], profile: Callable[[], Profile | None]
) -> Subject | None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_subject_sql(where), [PERSONALIZATION, *params])
            row = cursor.fetchone()
        if row is None:
            return None
        profile_id, merged_into, allowed = row
        if merged_into is None and allowed is not None:
            return Subject(profile_id, bool(allowed))
    # Merged away, another database, or a consent the SQL does not decide: read it all.
    found = profile()
    if found is None:
        return None
    found = profile_survivor(profile=found)
    return Subject(found.pk, personalization_allowed(profile=found))


def weighting() -> dict[str, Any]:
    """How interactions are weighted (settings), as TrainingData takes it."""
    return {
        "weights": dict(settings.RECS_INTERACTION_WEIGHTS),
        "half_life_days": settings.RECS_HALF_LIFE_DAYS,
        "repeat_half_life_days": settings.RECS_REPEAT_HALF_LIFE_DAYS,
    }


def profile_group(profile: Profile) -> str:
    """The group popularity is personalised by: the profile's country (trait, else the
    location its events' context gave), "" when unknown."""
    return _group(profile.traits, profile.context)


def _group(traits: Any, context: Any) -> str:
    traits = traits if isinstance(traits, dict) else {}
    location = (context or {}).get("location") if isinstance(context, dict) else {}
    for value in (traits.get("country"), (location or {}).get("country")):
        if isinstance(value, str) and value.strip():
            return value.strip()[:100]
    return ""


@dataclass(frozen=True)
class Person:
    """What serving reads of a profile beside its history: its group (`profile_group`) and
    the device type its events last came from (one of rules.DEVICES, "" when unknown)."""

    group: str
    device: str


def serving_person(*, profile: Profile) -> Person:
    return _person(profile.traits, profile.context)


def serving_person_get(*, profile_id: int) -> Person | None:
    """`serving_person` of the profile with this id (None: there is none), reading its traits
    and context only (the whole row through the ORM was 0.45 ms of CPU per list built)."""
    with connection.cursor() as cursor:
        cursor.execute(_person_sql(), [profile_id])
        row = cursor.fetchone()
    if row is None:
        return None
    return _person(json_column(row[0]), json_column(row[1]))


@functools.cache
def _person_sql() -> str:
    return f"SELECT traits, context FROM {Profile._meta.db_table} WHERE id = %s"  # noqa: S608


def _person(traits: Any, context: Any) -> Person:
    device = context.get("device") if isinstance(context, dict) else None
    kind = device.get("type") if isinstance(device, dict) else None
    return Person(_group(traits, context), kind if kind in DEVICES else "")


def training_data(
    *, now: datetime | None = None, item_keys: Sequence[str] | None = None
) -> TrainingData:
    """Every interaction of live profiles that allow personalization (merged profiles are one:
    their events belong to the survivor), with catalog texts for content similarity. `now`
    is the data's end: the newest interaction's time unless given. `item_keys`: indexed as a
    fitted model's items (the drift check), interactions with other items left out."""
    allowed = consent_profiles_allowed(
        purpose=PERSONALIZATION, profiles=Profile.objects.filter(merged_into__isnull=True)
    )
    interactions = Interaction.objects.filter(event__profile__in=allowed.values("pk"))
    rows = interactions.values_list("event__profile_id", "item__external_id", "kind", "occurred_at")
    records = [
        (profile_id, item, kind, naive_utc(at))
        for profile_id, item, kind, at in rows.iterator(chunk_size=20_000)
    ]
    if now is None:
        newest = max((r[3] for r in records), default=None)
        now = newest.replace(tzinfo=UTC) if newest else timezone.now()
    texts, categories = {}, {}
    for item in Item.objects.only(
        "external_id", "title", "description", "category", "brand", "attributes"
    ).iterator(chunk_size=5000):
        texts[item.external_id] = item_text(item)
        categories[item.external_id] = item.category
    people = {r[0] for r in records}
    groups = {
        profile.pk: profile_group(profile)
        for profile in Profile.objects.filter(pk__in=people).only("traits", "context")
    }
    return TrainingData.from_records(
        records,
        now=now,
        item_text=texts,
        item_category=categories,
        user_group=groups,
        extra_items=texts,
        item_keys=item_keys,
        **weighting(),
    )


def item_text(item: Item) -> str:
    """What content similarity reads about an item."""
    values = [str(v) for v in (item.attributes or {}).values() if not isinstance(v, list)]
    values += [str(x) for v in (item.attributes or {}).values() if isinstance(v, list) for x in v]
    return " ".join([item.title, item.description, item.category, item.brand, *values])


def profile_history(*, subject: Subject) -> list[tuple[str, str, datetime]]:
    """The (item external id, kind, naive UTC time) of the subject's interactions, newest
    first, for serving. Empty when the subject does not allow personalization (as read by
    `serving_subject` or `personalization_allowed` for the same request)."""
    if not subject.personalization_allowed:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_history_sql(), [subject.profile_id])
        rows = cursor.fetchall()
    return [(item, kind, naive_utc(at)) for item, kind, at in rows]


@functools.cache
def _history_sql() -> str:
    # Written out: every list not cached yet reads this, and building the ORM query was 0.65
    # of its 0.77 ms of CPU. Portable SQL: the embedded SQLite default runs it too (its
    # driver gives the declared datetime column as a naive UTC datetime).
    return (
        f"SELECT i.external_id, r.kind, r.occurred_at FROM {Interaction._meta.db_table} r "  # noqa: S608 - our tables
        f"JOIN {Event._meta.db_table} e ON e.id = r.event_id "
        f"JOIN {Item._meta.db_table} i ON i.id = r.item_id "
        "WHERE e.profile_id = %s ORDER BY r.occurred_at DESC LIMIT 5000"
    )


class ServedItem(NamedTuple):
    """What serving reads of an item: not its description and attributes (the bulk of a
    row), and as a tuple, not a model instance (~140 of them per answer)."""

    external_id: str
    title: str
    url: str
    image_url: str
    price: Decimal | None
    currency: str
    category: str
    brand: str
    availability: str


def served_items(keys: Iterable[str]) -> dict[str, ServedItem]:
    """The catalog's items with these external ids, by id (ids not in the catalog left out)."""
    wanted = list(set(keys))
    if not wanted:
        return {}
    sql = (
        f"SELECT {', '.join(ServedItem._fields)} FROM {Item._meta.db_table} "  # noqa: S608 - our names
        f"WHERE external_id IN ({', '.join(['%s'] * len(wanted))})"
    )
    # Written out (the ORM's query building was most of this read's CPU, and serving does it
    # twice per list): prices as the ORM reads them, which SQLite's driver does not do.
    with connection.cursor() as cursor:
        cursor.execute(sql, wanted)
        rows = cursor.fetchall()
    return {
        key: ServedItem(key, title, url, image, _price(price), currency, category, brand, stock)
        for key, title, url, image, price, currency, category, brand, stock in rows
    }


_CENTS = Decimal("0.01")  # Item.price's decimal places


def _price(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(_CENTS)


def items_bought_together(*, item: Item, limit: int = 8) -> list[tuple[Item, int]]:
    """The items most often in the same order as `item` (one `Order Completed` event is one
    order), with the number of such orders; only orders of people who allow personalization
    count, as in training."""
    allowed = consent_profiles_allowed(
        purpose=PERSONALIZATION, profiles=Profile.objects.filter(merged_into__isnull=True)
    )
    orders = Interaction.objects.filter(
        item=item, kind=InteractionKind.PURCHASE, event__profile__in=allowed.values("pk")
    ).values("event_id")
    counts = (
        Interaction.objects.filter(kind=InteractionKind.PURCHASE, event_id__in=orders)
        .exclude(item=item)
        .values("item_id")
        .annotate(orders=Count("event_id", distinct=True))
        .order_by("-orders", "item_id")[:limit]
    )
    found = {row["item_id"]: row["orders"] for row in counts}
    items = Item.objects.in_bulk(list(found))
    return [(items[pk], n) for pk, n in found.items() if pk in items]


def model_runs_chart(*, limit: int = 60) -> dict[str, Any]:
    """NDCG@10 on the validation window of the last `limit` evaluated runs, oldest first,
    beside recent popularity on the same window (Chart.js line data)."""
    runs = list(
        ModelRun.objects.filter(status=ModelRun.Status.DONE)
        .exclude(metrics={})
        .order_by("-created_at", "-id")
        .values("pk", "kind", "metrics")[:limit]
    )[::-1]
    return {
        "labels": [f"#{run['pk']} {run['kind']}" for run in runs],
        "datasets": [
            {
                "label": "This run",
                "data": [run["metrics"].get("validation", {}).get("ndcg") for run in runs],
            },
            {
                "label": "Recent popularity",
                "data": [run["metrics"].get("popularity", {}).get("ndcg") for run in runs],
            },
        ],
    }


def recommender_drift(*, days: int = 90) -> dict[str, Any]:
    """The serving run's drift for the models page: its latest check (`check`, with its
    reading by segments.ml.drift.drift_status at MODEL_DRIFT_PSI_THRESHOLD in `status`;
    None before the first check or when the run kept no training scores), and the checks of
    the last `days` as Chart.js line data: PSI and click-through rate by day."""
    threshold = settings.MODEL_DRIFT_PSI_THRESHOLD
    since = timezone.now().date() - timedelta(days=days)
    checks = list(
        ModelDrift.objects.filter(day__gte=since)
        .select_related("run")
        .only("run__is_serving", "run__kind", "day", "psi", "scored", "impressions", "clicks")
        .order_by("day", "run_id")
    )
    latest = next((c for c in reversed(checks) if c.run.is_serving), None)
    by_day = {check.day: check for check in checks}  # a day's newest run wins
    days_seen = sorted(by_day)
    ctr = [by_day[day].ctr for day in days_seen]
    return {
        "check": latest,
        "status": (
            drift_status(latest.psi, threshold=threshold)
            if latest is not None and latest.psi is not None
            else None
        ),
        "threshold": threshold,
        "sample": settings.RECS_DRIFT_SAMPLE,
        "chart": {
            "labels": [day.isoformat() for day in days_seen],
            "datasets": [
                {"label": "PSI", "data": [by_day[day].psi for day in days_seen]},
                {
                    "label": "Click-through rate",
                    "data": [round(v, 4) if v is not None else None for v in ctr],
                },
            ],
        },
    }


def item_imports() -> QuerySet[ItemImport]:
    return ItemImport.objects.select_related("requested_by")


TRENDING_DAYS = 7.0
TRENDING_BASELINE_DAYS = 28.0


def segment_trending(*, segment: Segment, now: datetime | None = None) -> dict[str, float]:
    """Items taking off among the segment's members (who allow personalization): the people
    who touched each item in the last week against the four weeks before, scored as the
    `trending` model scores everyone (recommenders.popularity.trend_scores); best first,
    items without uptake this week left out. Read live: segments change between trainings."""
    now = now or timezone.now()
    recent_start = now - timedelta(days=TRENDING_DAYS)
    members = consent_profiles_allowed(
        purpose=PERSONALIZATION, profiles=segment_members(segment=segment)
    )
    counts = (
        Interaction.objects.filter(
            event__profile__in=members.values("pk"),
            occurred_at__gte=recent_start - timedelta(days=TRENDING_BASELINE_DAYS),
            occurred_at__lt=now,
        )
        .values("item__external_id")
        .annotate(
            recent=Count("event__profile", distinct=True, filter=Q(occurred_at__gte=recent_start)),
            before=Count("event__profile", distinct=True, filter=Q(occurred_at__lt=recent_start)),
        )
        .filter(recent__gt=0)
    )
    rows = list(counts.values_list("item__external_id", "recent", "before"))
    if not rows:
        return {}
    scores = trend_scores(
        [r[1] for r in rows],
        [r[2] for r in rows],
        days=TRENDING_DAYS,
        baseline_days=TRENDING_BASELINE_DAYS,
    )
    ranked = sorted(zip((r[0] for r in rows), scores.tolist(), strict=True), key=lambda p: -p[1])
    return dict(ranked)
