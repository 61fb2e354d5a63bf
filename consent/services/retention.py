"""Retention: events older than their policy allows are purged, in batches."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from access.services import audit_record
from consent.models import RetentionPolicy
from profiles.models import Event
from profiles.services import events_delete_matching


def retention_purge(*, batch_size: int | None = None, now: datetime | None = None) -> int:
    """Delete events older than their retention policy, in batches. Returns rows deleted."""
    batch_size = batch_size or settings.RETENTION_PURGE_BATCH
    now = now or timezone.now()
    policies = list(RetentionPolicy.objects.filter(enabled=True))
    named = [p.event_name for p in policies if p.event_name != "*"]
    total = 0
    for policy in policies:
        cutoff = now - timedelta(days=policy.days)
        events = Event.objects.filter(timestamp__lt=cutoff)
        events = (
            events.exclude(event__in=named)
            if policy.event_name == "*"
            else events.filter(event=policy.event_name)
        )
        purged = events_delete_matching(events=events, batch_size=batch_size)
        RetentionPolicy.objects.filter(pk=policy.pk).update(last_run_at=now, last_purged=purged)
        if purged:
            audit_record(
                actor=None,
                action="retention.purge",
                resource="events",
                resource_id=policy.event_name,
                details={"deleted": purged, "days": policy.days},
            )
        total += purged
    return total
