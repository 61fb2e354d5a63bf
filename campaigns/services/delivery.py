"""Sending recorded deliveries: the one path every message takes, in batches (a task claims
up to SEND_BATCH rows; the rules read their facts once per batch, each channel sends its share
in chunks over one connection or connection pool, each chunk's outcomes written in bulk).

    claim the queued rows (skip those another worker holds or that are done)
    → the rules, checked now rather than when the person entered:
        the entry still in the journey; the channel enabled;
        consent (the consent app's gate for the channel's purpose; transactional campaigns
        skip it) and suppression (never skipped); an address that has not hard-bounced;
        the frequency cap (marketing); quiet hours in the recipient's zone (marketing: the
        send is delayed to their end, never dropped)
    → mark them "sending" and commit, so no other worker can send them
    → each channel's transport sends its share, chunk after chunk (Transport.send_chunks)
    → "sent" with the provider's id and the message digest; or back to "queued" with a
      backoff for a transient error; or "failed" for a permanent one or the last attempt.

Every skip is a row with its reason, so `campaigns.selectors.campaign_stats` counts them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from access.services import audit_record
from campaigns import definition as steps_language
from campaigns import selectors
from campaigns.channels import Transport, TransportError, transport_for
from campaigns.channels.email import EmailTransport
from campaigns.definition import InvalidCampaign
from campaigns.models import (
    Campaign,
    Channel,
    Delivery,
    Entry,
    RecommendationImpression,
)
from campaigns.queue import task_queue
from campaigns.services import experiments
from consent.selectors import consent_profiles_allowed, profiles_suppressed
from identity.selectors import profile_current
from profiles.models import Profile

logger = logging.getLogger(__name__)

# A queued row older than this without a send is assumed lost (its task vanished): re-queued.
LOST_AFTER = dt.timedelta(minutes=2)
# A row left "sending" this long belonged to a worker that died mid-send: it may have reached
# the provider, so it is marked failed, never sent again.
STUCK_AFTER = dt.timedelta(minutes=15)
SWEEP_BATCH = 1000
# Deliveries one send task claims: enough to amortise the rules' queries and a connection,
# few enough that a batch's sends finish well inside the task time limit.
SEND_BATCH = 200
# Sends one transport call makes over one connection (or pool) before their outcomes are
# written: at the outbound timeout and CAMPAIGN_SEND_CONCURRENCY, well inside a task's limit.
SEND_CHUNK = 50


@dataclass(frozen=True)
class Verdict:
    skip: str = ""
    delay_until: dt.datetime | None = None
    delay_reason: str = ""


# Svix's retry schedule (after the first attempt): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
RETRY_SCHEDULE = (5, 300, 1800, 7200, 18000, 36000, 36000)


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=RETRY_SCHEDULE[min(attempts, len(RETRY_SCHEDULE)) - 1])


@dataclass
class RuleFacts:
    """What the rules read, loaded once for a batch of deliveries (a few queries per batch
    rather than per delivery): the consent gate's answer per purpose, suppressions,
    recipients and bounces per channel, recent marketing sends per cap window. `admitted`
    counts the sends this batch already let through, so a cap holds inside a batch too."""

    allowed: dict[str, set[int]]
    suppressed: set[int]
    recipients: dict[int, dict[int, str | None]]
    undeliverable: dict[int, set[int]]
    sent_since: dict[int, dict[int, int]]
    admitted: dict[int, int]

    @classmethod
    def load(
        cls,
        pairs: Sequence[tuple[Delivery, Profile]],
        transports: Mapping[int, Transport],
        now: dt.datetime,
    ) -> RuleFacts:
        ids = {profile.pk for _, profile in pairs}
        allowed: dict[str, set[int]] = {}
        for purpose in {
            transports[d.channel_id].consent_purpose()
            for d, _ in pairs
            if d.campaign.kind == Campaign.Kind.MARKETING and d.channel_id in transports
        }:
            gate = consent_profiles_allowed(
                purpose=purpose, profiles=Profile.objects.filter(pk__in=list(ids))
            )
            allowed[purpose] = set(gate.values_list("pk", flat=True))
        recipients: dict[int, dict[int, str | None]] = {}
        undeliverable: dict[int, set[int]] = {}
        for channel_id, transport in transports.items():
            people = list({p.pk: p for d, p in pairs if d.channel_id == channel_id}.values())
            recipients[channel_id] = transport.recipients(people)
            undeliverable[channel_id] = transport.undeliverable(people)
        sent_since = {
            days: selectors.marketing_sends_since(
                profile_ids=ids, since=now - dt.timedelta(days=days)
            )
            for days in {_cap(d)["days"] for d, _ in pairs}
        }
        return cls(
            allowed=allowed,
            suppressed=profiles_suppressed(profile_ids=ids),
            recipients=recipients,
            undeliverable=undeliverable,
            sent_since=sent_since,
            admitted={},
        )


def _cap(delivery: Delivery) -> dict[str, int]:
    cap: dict[str, int] = (
        delivery.version.definition.get("frequency_cap") or settings.CAMPAIGN_FREQUENCY_CAP
    )
    return cap


def delivery_rules(
    *,
    delivery: Delivery,
    profile: Profile,
    transport: Transport,
    now: dt.datetime,
    facts: RuleFacts,
) -> Verdict:
    """Whether this delivery may go now: a skip reason, a delay, or neither. `facts` is the
    batch's (RuleFacts.load)."""
    marketing = delivery.campaign.kind == Campaign.Kind.MARKETING
    if delivery.entry.status == Entry.Status.EXITED:
        return Verdict(skip=Delivery.SkipReason.EXITED)
    if not delivery.channel.is_active:
        return Verdict(skip=Delivery.SkipReason.CHANNEL_DISABLED)
    # The consent gate answers "no" for a suppressed person too. Transactional sends ask the
    # suppression alone.
    if profile.pk in facts.suppressed:
        return Verdict(skip=Delivery.SkipReason.SUPPRESSED)
    if marketing and profile.pk not in facts.allowed[transport.consent_purpose()]:
        return Verdict(skip=Delivery.SkipReason.NO_CONSENT)
    if facts.recipients[delivery.channel_id].get(profile.pk) is None:
        return Verdict(skip=Delivery.SkipReason.NO_ADDRESS)
    if profile.pk in facts.undeliverable[delivery.channel_id]:
        return Verdict(skip=Delivery.SkipReason.BOUNCED)
    if not marketing:
        return Verdict()
    cap = _cap(delivery)
    sent = facts.sent_since[cap["days"]].get(profile.pk, 0) + facts.admitted.get(profile.pk, 0)
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
    facts.admitted[profile.pk] = facts.admitted.get(profile.pk, 0) + 1
    return Verdict()


def delivery_send(*, delivery_id: int, now: dt.datetime | None = None) -> Delivery | None:
    """Send one queued delivery (a batch of one; see deliveries_send)."""
    claimed = deliveries_send(delivery_ids=[delivery_id], now=now)
    return claimed[0] if claimed else None


def deliveries_send(
    *, delivery_ids: Sequence[int], now: dt.datetime | None = None
) -> list[Delivery]:
    """Send these queued deliveries that are due and that the rules allow, as one batch:
    the rows claimed and the rules applied in one transaction (a few queries for the whole
    batch), then each channel's transport sends its share in chunks of SEND_CHUNK over one
    connection or pool, each chunk's outcomes written in bulk. Idempotent (see the module).
    Returns the deliveries claimed (those another worker holds, or no longer queued, are
    left out)."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = list(
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=list(delivery_ids), status=Delivery.Status.QUEUED)
            .select_related("entry", "profile")
            .order_by("pk")
        )
        _shared_rows_attach(claimed)
        # Delayed ones stay queued: the sweep queues them again once due.
        due = [d for d in claimed if d.send_after is None or d.send_after <= now]
        sending = _rules_apply(due, now)
    # Committed as "sending": from here on no other worker picks these rows.
    by_channel: dict[int, list[Delivery]] = {}
    for delivery in sending:
        by_channel.setdefault(delivery.channel_id, []).append(delivery)
    for group in by_channel.values():
        transport = transport_for(group[0].channel)
        # Outcomes are written after each chunk (while the transport may post the next), so
        # a task stopped by its time limit (a receiver answering slowly) leaves at most two
        # chunks "sending".
        chunks = [group[start : start + SEND_CHUNK] for start in range(0, len(group), SEND_CHUNK)]
        with contextlib.closing(transport.send_chunks(chunks)) as outcomes:
            for chunk, chunk_outcomes in zip(chunks, outcomes, strict=True):
                sent: list[Delivery] = []
                for delivery, error in zip(chunk, chunk_outcomes, strict=True):
                    if error is None:
                        sent.append(delivery)
                    else:
                        _transport_failed(delivery, error, now)
                transport.gone_forget()
                _sent_record(sent)
    return claimed


def _shared_rows_attach(deliveries: list[Delivery]) -> None:
    """Attach campaigns, versions and channels, read once each for the batch (see
    selectors.campaign_rows_attach)."""
    selectors.campaign_rows_attach(deliveries)
    channels = Channel.objects.in_bulk({d.channel_id for d in deliveries})
    for delivery in deliveries:
        delivery.channel = channels[delivery.channel_id]


def deliveries_queue(*, delivery_ids: Sequence[int]) -> None:
    """Queue the sending of these deliveries after commit, SEND_BATCH to a task."""
    ids = list(delivery_ids)
    for start in range(0, len(ids), SEND_BATCH):
        task_queue("deliveries_send_task", ids[start : start + SEND_BATCH])


def _rules_apply(deliveries: list[Delivery], now: dt.datetime) -> list[Delivery]:
    """Apply the rules to these claimed rows (inside the claiming transaction): skipped,
    delayed and unsendable rows are written in bulk; the rest are marked "sending" and
    returned, with `profile` set to the person now (a person merged into another since
    entering is written to as the survivor)."""
    transports: dict[int, Transport] = {}
    broken: dict[int, str] = {}
    unsendable: list[Delivery] = []
    pairs: list[tuple[Delivery, Profile]] = []
    for delivery in deliveries:
        channel_id = delivery.channel_id
        if channel_id not in transports and channel_id not in broken:
            try:
                transports[channel_id] = transport_for(delivery.channel)
            except TransportError as error:
                broken[channel_id] = str(error)
        if channel_id in broken:
            delivery.last_error = broken[channel_id][:300]
            unsendable.append(delivery)
            continue
        pairs.append((delivery, profile_current(profile=delivery.profile)))
    facts = RuleFacts.load(pairs, transports, now)
    skipped: list[Delivery] = []
    delayed: list[Delivery] = []
    sending: list[Delivery] = []
    for delivery, profile in pairs:
        verdict = delivery_rules(
            delivery=delivery,
            profile=profile,
            transport=transports[delivery.channel_id],
            now=now,
            facts=facts,
        )
        delivery.updated_at = now
        if verdict.skip:
            delivery.status = Delivery.Status.SKIPPED
            delivery.skip_reason = verdict.skip
            if verdict.skip in (Delivery.SkipReason.CONTROL, Delivery.SkipReason.HOLDOUT):
                delivery.would_send_at = now
            skipped.append(delivery)
        elif verdict.delay_until is not None:
            delivery.send_after = verdict.delay_until
            delivery.delay_reason = verdict.delay_reason
            delayed.append(delivery)
        else:
            delivery.status = Delivery.Status.SENDING
            delivery.attempts += 1
            delivery.profile = profile
            sending.append(delivery)
    for delivery in unsendable:
        delivery.status = Delivery.Status.FAILED
    _update_grouped(unsendable, ["status", "last_error"], now)
    _update_grouped(skipped, ["status", "skip_reason", "would_send_at"], now)
    _update_grouped(delayed, ["send_after", "delay_reason"], now)
    Delivery.objects.filter(pk__in=[d.pk for d in sending]).update(
        status=Delivery.Status.SENDING, attempts=F("attempts") + 1, updated_at=now
    )
    for delivery in delayed:
        assert delivery.send_after is not None
        delay = (delivery.send_after - now).total_seconds()
        task_queue("delivery_send_task", delivery.pk, countdown=delay)
    return sending


def _update_grouped(deliveries: list[Delivery], fields: list[str], now: dt.datetime) -> None:
    """Write these fields of these rows, one UPDATE per distinct set of values (a batch's
    skips share a few reasons, its delays a few times)."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for delivery in deliveries:
        values = tuple(getattr(delivery, field) for field in fields)
        groups.setdefault(values, []).append(delivery.pk)
    for values, ids in groups.items():
        Delivery.objects.filter(pk__in=ids).update(
            **dict(zip(fields, values, strict=True)), updated_at=now
        )


def _sent_rows_update(sent: list[Delivery], at: dt.datetime) -> None:
    """Mark these rows sent with their own digest and provider id, in one statement; a row
    the sweep gave up on meanwhile (no longer "sending") stays as it is."""
    if connection.vendor != "postgresql":
        Delivery.objects.filter(status=Delivery.Status.SENDING).bulk_update(
            sent,
            [
                "status",
                "sent_at",
                "message_digest",
                "provider_message_id",
                "last_error",
                "updated_at",
            ],
        )
        return
    table = Delivery._meta.db_table
    # The outcome's commit does not wait for the disk (SET LOCAL: this transaction only, and
    # the same round trip). A database crash may then lose the last fraction of a second of
    # outcomes: those rows stay "sending", and the sweep marks them failed, never sends them
    # again. The claim that marked them "sending" before the send committed durably: that
    # write is what keeps a message from going twice.
    sql = (
        "SET LOCAL synchronous_commit TO OFF; "  # noqa: S608 - the names are ours
        f"UPDATE {table} AS d SET status = %s, sent_at = %s, updated_at = %s, "
        "last_error = '', message_digest = u.digest, provider_message_id = u.provider_id "
        "FROM unnest(%s::bigint[], %s::varchar[], %s::varchar[]) AS u(id, digest, provider_id) "
        "WHERE d.id = u.id AND d.status = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                Delivery.Status.SENT,
                at,
                at,
                [d.pk for d in sent],
                [d.message_digest for d in sent],
                [d.provider_message_id for d in sent],
                Delivery.Status.SENDING,
            ],
        )


def _sent_record(sent: list[Delivery]) -> None:
    """Mark sent in bulk (rows the sweep already gave up on stay failed), clear the channel's
    failing mark, and write the chunk's audit row. `sent`: one chunk, of one channel."""
    if not sent:
        return
    at = timezone.now()
    for delivery in sent:
        delivery.status = Delivery.Status.SENT
        delivery.sent_at = delivery.updated_at = at
        delivery.provider_message_id = delivery.provider_message_id[:255]
        delivery.last_error = ""
    with transaction.atomic():
        _sent_rows_update(sent, at)
        failing = {d.channel_id for d in sent if d.channel.failing_since is not None}
        if failing:
            Channel.objects.filter(pk__in=failing).update(failing_since=None)
        # The recommendation blocks the sent messages linked (a retried send adds none twice).
        RecommendationImpression.objects.bulk_create(
            [
                RecommendationImpression(delivery=delivery, slot=slot, model_run_id=run, items=n)
                for delivery in sent
                for slot, (run, n) in (
                    getattr(delivery, "recommendation_blocks", None) or {}
                ).items()
            ],
            ignore_conflicts=True,
        )
        # One audit row per chunk, naming each delivery, its person and campaign: every send
        # stays in the tamper-evident log (the Delivery rows, which erasure removes, hold the
        # rest), at one append to the chain per chunk rather than per message.
        audit_record(
            actor=None,
            action="campaign.send",
            resource="campaigns",
            details={
                "channel": sent[0].channel_id,
                "deliveries": [
                    {"delivery": d.pk, "profile": d.profile.pk, "campaign": d.campaign_id}
                    for d in sent
                ],
            },
        )


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
    deliveries_queue(delivery_ids=due)
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
        deliveries_queue(delivery_ids=batch)
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
    *,
    campaign: Campaign,
    channel_id: Any,
    message: Any,
    at: str,
    profile: Profile,
    to: str,
    actor: Any,
) -> None:
    """Send one message of a send step through its email channel, rendered for `profile` as
    `actor` may see it, to a staff address: the campaign's saved message or the editor's
    fields as they are (edits not saved). `at` is the message's JSON pointer in the
    definition (`/steps/1/send/message`, `/steps/1/send/variants/0/message`); the message is
    checked as a save checks it, so a template that cannot be used is an InvalidCampaign
    pointing at its field, never a broken send. Rendered and sent by the channel's own
    transport, marked as a test; nothing is recorded as a delivery, so no cap, count or
    result sees it. The send is audited."""
    channel = selectors.channel_get(channel_id=channel_id) if isinstance(channel_id, int) else None
    transport = transport_for(channel) if channel is not None else None
    if channel is None or not isinstance(transport, EmailTransport):
        raise TestSendError("test sends are for email steps")
    if not channel.is_active:
        raise TestSendError(f"the channel {channel.name} is disabled")
    problems = steps_language.message_problems(channel.kind, message, at=at)
    if problems:
        raise InvalidCampaign(problems)
    if not selectors.staff_address_known(address=to):
        raise TestSendError("test sends go only to the address of a staff account")
    context = selectors.preview_context(campaign=campaign, profile=profile, viewer=actor)
    try:
        transport.send_test(message=dict(message), context=context, to=to)
    except TransportError as error:
        raise TestSendError(f"the test send failed: {error}") from None
    audit_record(
        actor=actor,
        action="campaign.test_send",
        resource="campaigns",
        resource_id=campaign.pk or "",  # none for a campaign not saved yet
        profile_id=profile.pk,
        details={"message": at, "channel": channel.pk},
    )
