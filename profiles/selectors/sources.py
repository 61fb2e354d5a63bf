"""Reads of sources and what they sent: event and quarantine counts, quarantined messages."""

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


def quarantine_list(*, source: Source | None = None) -> QuerySet[QuarantinedMessage]:
    """Quarantined messages, newest first, optionally of one source."""
    queryset = QuarantinedMessage.objects.select_related("source").order_by("-received_at", "-id")
    if source is not None:
        queryset = queryset.filter(source=source)
    return queryset
