"""What recipients do with a sent message: opens, clicks, unsubscribes (public, signed links)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns.bots import bot_reason
from campaigns.channels import transport_for
from campaigns.models import Channel, Delivery, DeliveryEvent, RecommendationImpression
from consent.models import ConsentSource
from consent.selectors import consent_allows, consent_current_state, purposes_all
from consent.services import consent_record
from identity.selectors import profile_current


def _engaged(
    delivery_id: int,
    kind: str,
    field: str,
    url: str,
    now: dt.datetime,
    user_agent: str,
    slot: str = "",
) -> str | None:
    """Record an open or click (on an item of the recommendation block `slot`, when given);
    returns its bot reason ("" for a person), or None when there is no sent delivery with
    this id."""
    delivery = Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.SENT).first()
    if delivery is None:
        return None
    reason = bot_reason(kind=kind, user_agent=user_agent, at=now, sent_at=delivery.sent_at)
    block = (
        RecommendationImpression.objects.filter(delivery=delivery, slot=slot).first()
        if slot
        else None
    )
    DeliveryEvent.objects.create(
        delivery=delivery,
        kind=kind,
        url=url[:2000],
        at=now,
        bot_reason=reason,
        recommendation=block,
    )
    if not reason:
        # The first time only: later opens are events, not a new "opened at".
        Delivery.objects.filter(pk=delivery.pk, **{f"{field}__isnull": True}).update(**{field: now})
    return reason


def delivery_open_record(
    *, delivery_id: int, user_agent: str = "", now: dt.datetime | None = None
) -> bool:
    """Record an open (a machine's is kept apart: campaigns.bots). False: no such send."""
    now = now or timezone.now()
    return (
        _engaged(delivery_id, DeliveryEvent.Kind.OPEN, "opened_at", "", now, user_agent) is not None
    )


def delivery_click_record(
    *,
    delivery_id: int,
    url: str,
    slot: str = "",
    user_agent: str = "",
    now: dt.datetime | None = None,
) -> bool:
    """Record a click (on an item of the recommendation block `slot`, when given). False:
    no such send."""
    now = now or timezone.now()
    reason = _engaged(
        delivery_id, DeliveryEvent.Kind.CLICK, "clicked_at", url, now, user_agent, slot
    )
    if reason is None:
        return False
    if not reason:
        # A person's click proves an open that images turned off did not report.
        Delivery.objects.filter(pk=delivery_id, opened_at__isnull=True).update(opened_at=now)
    return True


@transaction.atomic
def delivery_unsubscribe(*, delivery_id: int, ip: str | None = None) -> bool:
    """The person behind this delivery withdraws the consent its channel sends under (a
    consent record with source "preference_center"). Returns False when the delivery is gone
    (erased); repeating it changes nothing."""
    delivery = Delivery.objects.select_related("channel", "profile").filter(pk=delivery_id).first()
    if delivery is None:
        return False
    profile = profile_current(profile=delivery.profile)
    purpose = transport_for(delivery.channel).consent_purpose()
    if consent_allows(profile=profile, purpose=purpose):
        consent_record(
            profile=profile,
            purpose=purpose,
            granted=False,
            source=ConsentSource.PREFERENCE_CENTER,
            evidence={"delivery": delivery.pk, "campaign": delivery.campaign_id},
            ip=ip,
        )
        DeliveryEvent.objects.create(
            delivery=delivery, kind=DeliveryEvent.Kind.UNSUBSCRIBE, at=timezone.now()
        )
    return True


# What the public preference centre offers to change: the purposes campaigns send under.
PREFERENCE_PURPOSES = ("email_marketing", "push")


def delivery_preferences(*, delivery_id: int) -> list[dict[str, Any]] | None:
    """The preference centre's rows for the person behind this delivery: each purpose
    campaigns send under, its name and whether it is granted now. None: the delivery is gone."""
    delivery = Delivery.objects.select_related("profile").filter(pk=delivery_id).first()
    if delivery is None:
        return None
    profile = profile_current(profile=delivery.profile)
    names = {p.code: p.name for p in purposes_all()}
    return [
        {"purpose": row["purpose"], "name": names[row["purpose"]], "granted": row["granted"]}
        for row in consent_current_state(profile=profile)
        if row["purpose"] in PREFERENCE_PURPOSES
    ]


@transaction.atomic
def delivery_preferences_set(
    *, delivery_id: int, granted: dict[str, bool], ip: str | None = None
) -> bool:
    """Write the person's choices from the preference centre as consent records (source
    "preference_center"), only where they differ from the current state."""
    delivery = Delivery.objects.select_related("profile").filter(pk=delivery_id).first()
    if delivery is None:
        return False
    profile = profile_current(profile=delivery.profile)
    for purpose, wanted in granted.items():
        if (
            purpose in PREFERENCE_PURPOSES
            and consent_allows(profile=profile, purpose=purpose) != wanted
        ):
            consent_record(
                profile=profile,
                purpose=purpose,
                granted=wanted,
                source=ConsentSource.PREFERENCE_CENTER,
                evidence={"delivery": delivery.pk, "campaign": delivery.campaign_id},
                ip=ip,
            )
    return True


@transaction.atomic
def delivery_feedback_record(
    *, channel: Channel, message_id: str, kind: str, permanent: bool = True
) -> Delivery | None:
    """What the provider reports about a sent message (its ESP webhook): a hard bounce stops
    further sends to that address (campaigns.selectors.emails_bounced); a complaint withdraws
    the consent the channel sends under, as an unsubscribe does. Soft bounces change nothing.
    Returns the delivery, or None when no sent delivery of this channel has that id."""
    delivery = (
        Delivery.objects.select_related("channel", "profile")
        .filter(channel=channel, provider_message_id=message_id)
        .first()
    )
    if delivery is None:
        return None
    now = timezone.now()
    if kind == DeliveryEvent.Kind.BOUNCE and permanent:
        DeliveryEvent.objects.create(delivery=delivery, kind=DeliveryEvent.Kind.BOUNCE, at=now)
    elif kind == DeliveryEvent.Kind.COMPLAINT:
        DeliveryEvent.objects.create(delivery=delivery, kind=DeliveryEvent.Kind.COMPLAINT, at=now)
        delivery_unsubscribe(delivery_id=delivery.pk)
    return delivery
