"""Sending a recorded delivery: the one path every message takes.

    claim the queued row (skip it if another worker holds it or it is done)
    → the rules, checked now rather than when the person entered:
        the entry still in the journey; the channel enabled;
        consent (the consent app's gate for the channel's purpose; transactional campaigns
        skip it) and suppression (never skipped); an address that has not hard-bounced;
        the frequency cap (marketing); quiet hours in the recipient's zone (marketing: the
        send is delayed to their end, never dropped)
    → mark it "sending" and commit, so no other worker can send it
    → the channel's transport sends it
    → "sent" with the provider's id and the message digest; or back to "queued" with a
      backoff for a transient error; or "failed" for a permanent one or the last attempt.

Every skip is a row with its reason, so `campaigns.selectors.campaign_stats` counts them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from access.services import audit_record
from campaigns import definition as steps_language
from campaigns import selectors
from campaigns.channels import Transport, TransportError, transport_for
from campaigns.channels.email import EmailTransport
from campaigns.models import Campaign, Channel, Delivery, Entry
from campaigns.queue import task_queue
from campaigns.services import experiments
from consent.selectors import consent_allows, profile_is_suppressed
from identity.selectors import profile_current
from profiles.models import Profile

logger = logging.getLogger(__name__)

# A queued row older than this without a send is assumed lost (its task vanished): re-queued.
LOST_AFTER = dt.timedelta(minutes=2)
# A row left "sending" this long belonged to a worker that died mid-send: it may have reached
# the provider, so it is marked failed, never sent again.
STUCK_AFTER = dt.timedelta(minutes=15)
SWEEP_BATCH = 1000


@dataclass(frozen=True)
class Verdict:
    skip: str = ""
    delay_until: dt.datetime | None = None
    delay_reason: str = ""


# Svix's retry schedule (after the first attempt): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1])


def delivery_rules(
    *, delivery: Delivery, profile: Profile, transport: Transport, now: dt.datetime
) -> Verdict:
    """Whether this delivery may go now: a skip reason, a delay, or neither."""
    marketing = delivery.campaign.kind == Campaign.Kind.MARKETING
    if delivery.entry.status == Entry.Status.EXITED:
        return Verdict(skip=Delivery.SkipReason.EXITED)
    if not delivery.channel.is_active:
        return Verdict(skip=Delivery.SkipReason.CHANNEL_DISABLED)
    # The consent gate answers "no" for a suppressed person too; asking which it was costs a
    # query only when the answer is no. Transactional sends ask the suppression alone.
    allowed = (
        consent_allows(profile=profile, purpose=transport.consent_purpose())
        if marketing
        else not profile_is_suppressed(profile=profile)
    )
    if not allowed:
        suppressed = not marketing or profile_is_suppressed(profile=profile)
        reason = Delivery.SkipReason.SUPPRESSED if suppressed else Delivery.SkipReason.NO_CONSENT
        return Verdict(skip=reason)
    if transport.recipient(profile) is None:
        return Verdict(skip=Delivery.SkipReason.NO_ADDRESS)
    if transport.undeliverable(profile):
        return Verdict(skip=Delivery.SkipReason.BOUNCED)
    if not marketing:
        return Verdict()
    cap = delivery.version.definition.get("frequency_cap") or settings.CAMPAIGN_FREQUENCY_CAP
    sent = selectors.marketing_sends_since(
        profile=profile, since=now - dt.timedelta(days=cap["days"])
    )
    if sent >= cap["messages"]:
        return Verdict(skip=Delivery.SkipReason.CAPPED)
    tz = steps_language.recipient_zone(profile.context, settings.CAMPAIGN_TIMEZONE)
    quiet_end = steps_language.quiet_until(now, tz, settings.CAMPAIGN_QUIET_HOURS)
    if quiet_end is not None:
        return Verdict(delay_until=quiet_end, delay_reason="quiet_hours")
    # Last, so that the holdout and the control group are exactly the people the message
    # would have reached now (their would-be send time is recorded).
    if experiments.in_holdout(profile_id=profile.pk):
        return Verdict(skip=Delivery.SkipReason.HOLDOUT)
    if delivery.is_control:
        return Verdict(skip=Delivery.SkipReason.CONTROL)
    return Verdict()


def delivery_send(*, delivery_id: int, now: dt.datetime | None = None) -> Delivery | None:
    """Send one queued delivery if it is due and the rules allow; idempotent (see module)."""
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=delivery_id, status=Delivery.Status.QUEUED)
            .select_related("campaign", "version", "channel", "entry", "profile")
            .first()
        )
        if delivery is None:
            return None  # sent, skipped, failed, or held by another worker right now
        if delivery.send_after is not None and delivery.send_after > now:
            return delivery  # delayed: the sweep queues it again once due
        # A person merged into another since entering is written to as the survivor.
        profile = profile_current(profile=delivery.profile)
        try:
            transport = transport_for(delivery.channel)
        except TransportError as error:
            _fail(delivery, str(error), now)
            return delivery
        verdict = delivery_rules(delivery=delivery, profile=profile, transport=transport, now=now)
        if verdict.skip:
            delivery.status = Delivery.Status.SKIPPED
            delivery.skip_reason = verdict.skip
            if verdict.skip in (Delivery.SkipReason.CONTROL, Delivery.SkipReason.HOLDOUT):
                delivery.would_send_at = now
            delivery.save(update_fields=["status", "skip_reason", "would_send_at", "updated_at"])
            return delivery
        if verdict.delay_until is not None:
            delivery.send_after = verdict.delay_until
            delivery.delay_reason = verdict.delay_reason
            delivery.save(update_fields=["send_after", "delay_reason", "updated_at"])
            delay = (verdict.delay_until - now).total_seconds()
            task_queue("delivery_send_task", delivery.pk, countdown=delay)
            return delivery
        delivery.status = Delivery.Status.SENDING
        delivery.attempts += 1
        delivery.save(update_fields=["status", "attempts", "updated_at"])
    # Committed as "sending": from here on no other worker picks this row.
    delivery.profile = profile
    try:
        transport.send(delivery)
    except TransportError as error:
        _transport_failed(delivery, error, now)
        return delivery
    delivery.status = Delivery.Status.SENT
    delivery.sent_at = timezone.now()
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.SENT,
        sent_at=delivery.sent_at,
        message_digest=delivery.message_digest,
        provider_message_id=delivery.provider_message_id[:255],
        last_error="",
        updated_at=delivery.sent_at,
    )
    if delivery.channel.failing_since is not None:
        Channel.objects.filter(pk=delivery.channel_id).update(failing_since=None)
    audit_record(
        actor=None,
        action="campaign.send",
        resource="campaigns",
        resource_id=delivery.pk,
        profile_id=profile.pk,
        details={"campaign": delivery.campaign_id, "channel": delivery.channel_id},
    )
    return delivery


def _fail(delivery: Delivery, error: str, now: dt.datetime) -> None:
    delivery.status = Delivery.Status.FAILED
    delivery.last_error = error[:300]
    Delivery.objects.filter(pk=delivery.pk).update(
        status=delivery.status, last_error=delivery.last_error, updated_at=now
    )


def _transport_failed(delivery: Delivery, error: TransportError, now: dt.datetime) -> None:
    logger.warning(
        "delivery %s attempt %s failed (%s): %s",
        delivery.pk,
        delivery.attempts,
        "permanent" if error.permanent else "will retry",
        error,
    )
    _channel_failure_note(delivery.channel, error, now)
    if error.permanent or delivery.attempts >= settings.CAMPAIGN_SEND_ATTEMPTS:
        _fail(delivery, str(error), now)
        return
    retry_at = now + _backoff(delivery.attempts)
    Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.QUEUED,
        send_after=retry_at,
        delay_reason="retry",
        last_error=str(error)[:300],
        updated_at=now,
    )
    delivery.status = Delivery.Status.QUEUED
    task_queue("delivery_send_task", delivery.pk, countdown=(retry_at - now).total_seconds())


def _channel_failure_note(channel: Channel, error: TransportError, now: dt.datetime) -> None:
    """A channel that answered 410, or failed every send for CAMPAIGN_CHANNEL_FAILING_DAYS,
    is disabled (and shown so on its page and in the API) until staff enable it again."""
    failing = Channel.objects.filter(pk=channel.pk)
    failing.filter(failing_since__isnull=True).update(failing_since=now)
    limit = now - dt.timedelta(days=settings.CAMPAIGN_CHANNEL_FAILING_DAYS)
    if error.disable:
        reason = str(error)
    elif failing.filter(failing_since__lte=limit).exists():
        reason = f"every send failed for {settings.CAMPAIGN_CHANNEL_FAILING_DAYS} days: {error}"
    else:
        return
    failing.update(is_active=False, disabled_reason=reason[:300], updated_at=now)
    logger.warning("channel %s disabled: %s", channel.pk, reason)


def deliveries_sweep(*, now: dt.datetime | None = None, batch: int = SWEEP_BATCH) -> int:
    """Beat: re-queue queued deliveries that are due (a delay ended) or whose task was lost,
    and mark failed those a dead worker left "sending". Returns how many were re-queued."""
    now = now or timezone.now()
    stuck = Delivery.objects.filter(
        status=Delivery.Status.SENDING, updated_at__lt=now - STUCK_AFTER
    ).update(
        status=Delivery.Status.FAILED,
        last_error="the worker stopped while sending; not retried, to never send twice",
        updated_at=now,
    )
    if stuck:
        logger.warning("%s deliveries were left sending by a stopped worker", stuck)
    due = list(
        Delivery.objects.filter(status=Delivery.Status.QUEUED, updated_at__lt=now - LOST_AFTER)
        .filter(Q(send_after__isnull=True) | Q(send_after__lte=now))
        .order_by("updated_at")
        .values_list("pk", flat=True)[:batch]
    )
    for delivery_id in due:
        task_queue("delivery_send_task", delivery_id)
    return len(due)


def deliveries_replay(*, deliveries: QuerySet[Delivery], actor: Any) -> int:
    """Send failed deliveries again (the dead-letter list's replay, of one or all): they go
    back to "queued" with a fresh count of attempts. Returns how many were queued."""
    ids = list(deliveries.filter(status=Delivery.Status.FAILED).values_list("pk", flat=True))
    now = timezone.now()
    for start in range(0, len(ids), SWEEP_BATCH):
        batch = ids[start : start + SWEEP_BATCH]
        Delivery.objects.filter(pk__in=batch, status=Delivery.Status.FAILED).update(
            status=Delivery.Status.QUEUED,
            attempts=0,
            send_after=None,
            delay_reason="replay",
            updated_at=now,
        )
        for delivery_id in batch:
            task_queue("delivery_send_task", delivery_id)
    audit_record(
        actor=actor,
        action="campaign.replay",
        resource="campaigns",
        details={"deliveries": len(ids)},
    )
    return len(ids)


class TestSendError(ValueError):
    """A test send that cannot be made (the message says why)."""


def campaign_test_send(
    *, campaign: Campaign, step: str, profile: Profile, to: str, actor: Any, variant: str = ""
) -> None:
    """Send an email step's message (the variant's, when it has variants), rendered for
    `profile` as `actor` may see it, to a staff address. Nothing is recorded as a delivery;
    the send is audited."""
    if not selectors.staff_address_known(address=to):
        raise TestSendError("test sends go only to the address of a staff account")
    version = selectors.campaign_version_current(campaign=campaign)
    try:
        send = steps_language.step_at(
            version.definition["steps"], steps_language.pointer_path(step)
        )["send"]
    except (ValueError, IndexError, KeyError, TypeError):
        raise TestSendError(f"{step} is not a send step of this campaign") from None
    message = steps_language.send_message(send, variant)
    channel = selectors.channel_get(channel_id=send["channel"])
    transport = transport_for(channel) if channel is not None else None
    if not isinstance(transport, EmailTransport):
        raise TestSendError("test sends are for email steps")
    context = selectors.preview_context(campaign=campaign, profile=profile, viewer=actor)
    try:
        transport.send_test(message=dict(message), context=context, to=to)
    except TransportError as error:
        raise TestSendError(f"the test send failed: {error}") from None
    audit_record(
        actor=actor,
        action="campaign.test_send",
        resource="campaigns",
        resource_id=campaign.pk,
        profile_id=profile.pk,
        details={"step": step},
    )
