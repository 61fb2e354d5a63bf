"""Retention: what is older than its policy allows is purged, in batches: events by their
policy, and under the default ("*") policy the other copies of what people sent and were sent,
quarantined payloads here and, through retention hooks, the apps above consent (segment
webhook bodies, personalisation decisions)."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from access.services import audit_record
from consent.models import RetentionPolicy
from profiles.models import Event, QuarantinedMessage
from profiles.services import events_delete_matching, quarantined_messages_delete_before

RetentionHook = Callable[..., dict[str, int]]
RETENTION_HOOKS: dict[str, RetentionHook] = {}


def retention_hook_register(*, name: str, hook: RetentionHook) -> None:
    """Let an app above consent purge what it keeps of messages and payloads. Register once,
    from the app's `AppConfig.ready()`, under the app's label (a second registration under a
    name replaces the first).

    Contract: `hook(*, before: datetime, batch_size: int) -> {"app_label.Model": rows purged}`
    deletes, in batches of `batch_size`, its app's finished rows created before `before` that
    hold message bodies or payloads, or record what was done to a person (work still pending,
    and state a person active since `before` still relies on, is kept); idempotent.
    """
    RETENTION_HOOKS[name] = hook


def retention_purge(*, batch_size: int | None = None, now: datetime | None = None) -> int:
    """Delete events older than their retention policy and, under the "*" policy, quarantined
    messages and the hooks' payloads, in batches. Returns rows deleted."""
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
        _purge_audit(policy, "events", purged)
        total += purged
        if policy.event_name == "*":
            total += _payloads_purge(policy, before=cutoff, batch_size=batch_size)
    return total


def _payloads_purge(policy: RetentionPolicy, *, before: datetime, batch_size: int) -> int:
    purged = {
        QuarantinedMessage._meta.label: quarantined_messages_delete_before(
            before=before, batch_size=batch_size
        )
    }
    for hook in RETENTION_HOOKS.values():
        purged.update(hook(before=before, batch_size=batch_size))
    for label, count in purged.items():
        _purge_audit(policy, label, count)
    return sum(purged.values())


def _purge_audit(policy: RetentionPolicy, resource: str, purged: int) -> None:
    if purged:
        audit_record(
            actor=None,
            action="retention.purge",
            resource=resource,
            resource_id=policy.event_name,
            details={"deleted": purged, "days": policy.days},
        )
