"""Reads of sources and what they sent: event and quarantine counts, quarantined messages, the
latest events (the live view) and the schema their track events show."""

from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from access.models import Source
from profiles.models import Event, QuarantinedMessage


def sources_overview() -> QuerySet[Source]:
    """Every source with its event and quarantine counts, latest event time and plan.

    Counts are per-source subqueries (each an index scan on that source's rows), not one
    join over every event."""
    events = Event.objects.filter(source=OuterRef("pk"))
    quarantined = QuarantinedMessage.objects.filter(source=OuterRef("pk"))
    return (
        Source.objects.select_related("plan")
        .annotate(
            events_count=Coalesce(
                Subquery(events.order_by().values("source").annotate(n=Count("*")).values("n")),
                0,
            ),
            quarantined_count=Coalesce(
                Subquery(
                    quarantined.order_by().values("source").annotate(n=Count("*")).values("n")
                ),
                0,
            ),
            latest_event_at=Subquery(events.order_by("-received_at").values("received_at")[:1]),
        )
        .order_by("name")
    )


def source_overview(*, source_id: int) -> Source | None:
    return sources_overview().filter(pk=source_id).first()


def quarantine_list(
    *, source: Source | None = None, event: str = ""
) -> QuerySet[QuarantinedMessage]:
    """Quarantined messages, newest first, optionally of one source and one event name."""
    queryset = QuarantinedMessage.objects.select_related("source").order_by("-received_at", "-id")
    if source is not None:
        queryset = queryset.filter(source=source)
    if event:
        queryset = queryset.filter(event=event)
    return queryset


def source_latest_events(*, source: Source, limit: int = 25) -> QuerySet[Event]:
    """The source's latest events as received, newest first (the Data page's live view)."""
    return Event.objects.filter(source=source).order_by("-received_at", "-id")[:limit]


def tracking_plan_inferred(*, source: Source, sample: int = 2000) -> dict[str, Any]:
    """A tracking plan's event schemas as the source's latest `sample` track events show them:
    per event name, the JSON Schema of its properties (a property seen in every event of that
    name is required). A start for an admin to edit, not a plan in force."""
    from genson import SchemaBuilder

    builders: dict[str, SchemaBuilder] = {}
    recent = (
        Event.objects.filter(source=source, type="track")
        .order_by("-received_at")
        .values_list("event", "properties")[:sample]
    )
    for name, properties in recent:
        if isinstance(properties, dict):
            builders.setdefault(name, SchemaBuilder(schema_uri=None)).add_object(properties)
    return {name: builders[name].to_schema() for name in sorted(builders)}
