"""Reads: campaigns and their current version, channels, deliveries, counts, and what a
message is rendered from."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from access.pii import pii_for
from campaigns.definition import pointer_path, step_at
from campaigns.messages import render, render_json
from campaigns.models import (
    BanditAllocation,
    Campaign,
    CampaignVersion,
    Channel,
    Delivery,
    DeliveryEvent,
    Entry,
    PushSubscription,
    RecommendationImpression,
)
from campaigns.recommended import RecommendationSlots
from campaigns.tracking import unsubscribe_url
from identity.models import Identity
from profiles.models import Profile
from profiles.selectors import profile_computed_features


def campaign_list(*, include_archived: bool = False) -> QuerySet[Campaign]:
    campaigns = Campaign.objects.all()
    if not include_archived:
        campaigns = campaigns.exclude(status=Campaign.Status.ARCHIVED)
    return campaigns.order_by("-id")


def campaign_get(*, campaign_id: int) -> Campaign | None:
    return Campaign.objects.filter(pk=campaign_id).first()


def campaign_version_current(*, campaign: Campaign) -> CampaignVersion:
    # Every campaign is created with its first version, in one transaction.
    return CampaignVersion.objects.filter(campaign=campaign).order_by("-number")[0]


def campaign_send_step(*, campaign: Campaign, step: str) -> dict[str, Any] | None:
    """The `send` of the campaign's current version's send step at pointer `step`, or None
    when no send step is there."""
    steps = campaign_version_current(campaign=campaign).definition["steps"]
    try:
        found = step_at(steps, pointer_path(step))
    except (ValueError, IndexError, KeyError, TypeError):
        return None
    send = found.get("send")
    return send if isinstance(send, dict) else None


def campaign_versions_current(*, campaigns: list[Campaign]) -> dict[int, CampaignVersion]:
    """{campaign id: its current version}, in one query."""
    latest = CampaignVersion.objects.filter(campaign=OuterRef("campaign")).order_by("-number")
    versions = CampaignVersion.objects.filter(
        campaign__in=campaigns, pk=Subquery(latest.values("pk")[:1])
    )
    return {version.campaign_id: version for version in versions}


@dataclass(frozen=True)
class LiveCampaign:
    campaign: Campaign
    version: CampaignVersion

    @property
    def definition(self) -> dict[str, Any]:
        return self.version.definition


def campaigns_live() -> list[LiveCampaign]:
    """Active campaigns with their current versions (two queries)."""
    campaigns = list(Campaign.objects.filter(status=Campaign.Status.ACTIVE).order_by("pk"))
    versions = campaign_versions_current(campaigns=campaigns)
    return [LiveCampaign(c, versions[c.pk]) for c in campaigns if c.pk in versions]


def campaign_stats(*, campaign: Campaign) -> dict[str, Any]:
    """Entered, sent, skipped (by reason), failed, opened, clicked, converted."""
    statuses = dict(
        Delivery.objects.filter(campaign=campaign)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    skipped = dict(
        Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SKIPPED)
        .values_list("skip_reason")
        .annotate(n=Count("id"))
        .values_list("skip_reason", "n")
    )
    entries = Entry.objects.filter(campaign=campaign).aggregate(
        entered=Count("id"), converted=Count("id", filter=Q(converted_at__isnull=False))
    )
    engaged = Delivery.objects.filter(campaign=campaign).aggregate(
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        clicked=Count("id", filter=Q(clicked_at__isnull=False)),
    )
    return {
        "entered": entries["entered"],
        "queued": statuses.get(Delivery.Status.QUEUED, 0)
        + statuses.get(Delivery.Status.SENDING, 0),
        "sent": statuses.get(Delivery.Status.SENT, 0),
        "skipped": sum(skipped.values()),
        "skipped_by_reason": skipped,
        "failed": statuses.get(Delivery.Status.FAILED, 0),
        "opened": engaged["opened"],
        "clicked": engaged["clicked"],
        "converted": entries["converted"],
    }


def campaigns_counts(*, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """{campaign id: entered, sent, opened, clicked, converted} for a list page (two queries)."""
    counts: dict[int, dict[str, int]] = {
        pk: {"entered": 0, "converted": 0, "sent": 0, "opened": 0, "clicked": 0}
        for pk in campaign_ids
    }
    entries = (
        Entry.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(entered=Count("id"), converted=Count("id", filter=Q(converted_at__isnull=False)))
    )
    for row in entries:
        counts[row["campaign_id"]].update(entered=row["entered"], converted=row["converted"])
    deliveries = (
        Delivery.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(
            sent=Count("id", filter=Q(status=Delivery.Status.SENT)),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
        )
    )
    for sends in deliveries:
        counts[sends["campaign_id"]].update(
            sent=sends["sent"], opened=sends["opened"], clicked=sends["clicked"]
        )
    return counts


def campaign_deliveries(*, campaign: Campaign) -> QuerySet[Delivery]:
    return Delivery.objects.filter(campaign=campaign).select_related("version", "channel")


def deliveries_failed(*, channel_id: int | None = None) -> QuerySet[Delivery]:
    """The dead-letter list: deliveries that failed for good, newest first."""
    failed = Delivery.objects.filter(status=Delivery.Status.FAILED)
    if channel_id is not None:
        failed = failed.filter(channel_id=channel_id)
    return failed.select_related("version", "channel")


def profile_deliveries(*, profile: Profile) -> QuerySet[Delivery]:
    return Delivery.objects.filter(profile=profile).select_related("campaign", "version", "channel")


def channel_list() -> QuerySet[Channel]:
    return Channel.objects.order_by("name", "id")


def channel_get(*, channel_id: int) -> Channel | None:
    return Channel.objects.filter(pk=channel_id).first()


def channel_kinds(*, channel_ids: set[int]) -> dict[int, str]:
    return dict(Channel.objects.filter(pk__in=channel_ids).values_list("pk", "kind"))


def marketing_sends_since(*, profile_ids: Collection[int], since: dt.datetime) -> dict[int, int]:
    """{profile id: marketing messages sent since `since`, every channel} (frequency caps);
    people with none are left out. One query."""
    return dict(
        Delivery.objects.filter(
            profile_id__in=list(profile_ids),
            status=Delivery.Status.SENT,
            sent_at__gte=since,
            campaign__kind=Campaign.Kind.MARKETING,
        )
        .values_list("profile_id")
        .annotate(n=Count("id"))
        .values_list("profile_id", "n")
    )


def campaign_rows_attach(rows: Sequence[Entry] | Sequence[Delivery]) -> None:
    """Set each row's `campaign` and `version`, each read once for all the rows (two queries):
    a batch's rows share a few, and a version's definition, which holds its messages, is
    decoded once rather than once per row as select_related would."""
    campaigns = Campaign.objects.in_bulk({row.campaign_id for row in rows})
    versions = CampaignVersion.objects.in_bulk({row.version_id for row in rows})
    for row in rows:
        row.campaign = campaigns[row.campaign_id]
        row.version = versions[row.version_id]


def deliveries_queued_of(*, entry_ids: Collection[int]) -> list[int]:
    """The ids of these entries' deliveries still queued (due or not), oldest first."""
    return list(
        Delivery.objects.filter(entry_id__in=list(entry_ids), status=Delivery.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def profile_emails(*, profile_ids: Collection[int]) -> dict[int, str]:
    """{profile id: the address to write to} for those of these people who have one (one
    query; the newest email identity of each, normalised as identities are)."""
    rows = (
        Identity.objects.filter(profile_id__in=list(profile_ids), kind="email")
        .order_by("profile_id", "-id")
        .values_list("profile_id", "value")
    )
    found: dict[int, str] = {}
    for profile_id, value in rows:
        found.setdefault(profile_id, value)
    return found


def emails_bounced(*, profile_ids: Collection[int]) -> set[int]:
    """The people among these whose current address hard-bounced (a bounce reported after
    the address was recorded; a new address starts clean). Two queries."""
    bounces = dict(
        DeliveryEvent.objects.filter(
            delivery__profile_id__in=list(profile_ids), kind=DeliveryEvent.Kind.BOUNCE
        )
        .values_list("delivery__profile_id")
        .annotate(last=Max("at"))
        .values_list("delivery__profile_id", "last")
    )
    if not bounces:
        return set()
    since = dict(
        Identity.objects.filter(profile_id__in=list(bounces), kind="email")
        .values_list("profile_id")
        .annotate(newest=Max("id"))
        .values_list("profile_id", "newest")
    )
    recorded = dict(Identity.objects.filter(pk__in=since.values()).values_list("pk", "created_at"))
    return {
        profile_id
        for profile_id, last in bounces.items()
        if profile_id in since and last >= recorded[since[profile_id]]
    }


def push_subscriptions_of(*, profile_ids: Collection[int]) -> dict[int, list[PushSubscription]]:
    """{profile id: its browser push subscriptions, oldest first} (one query)."""
    found: dict[int, list[PushSubscription]] = {}
    for subscription in PushSubscription.objects.filter(profile_id__in=list(profile_ids)).order_by(
        "profile_id", "id"
    ):
        found.setdefault(subscription.profile_id, []).append(subscription)
    return found


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


def delivery_context(
    *, delivery: Delivery, profile: Profile, unsubscribe_link: bool = True
) -> dict[str, Any]:
    """What a delivery's templates see (see campaigns.messages). Without `unsubscribe_link`
    (a message that never reads it), `unsubscribe_url` is left empty rather than signed."""
    computed = profile_computed_features(profile, now=timezone.now())
    trigger = delivery.entry.trigger or {}
    return {
        "profile": {
            "id": profile.pk,
            "traits": profile.traits or {},
            "computed": {key: _plain(value) for key, value in computed.items()},
        },
        "event": {"name": trigger.get("event", ""), "properties": trigger.get("properties", {})},
        "campaign": {"name": delivery.campaign.name},
        "unsubscribe_url": unsubscribe_url(delivery_id=delivery.pk) if unsubscribe_link else "",
        "recommendations": RecommendationSlots(profile),
    }


def profile_get(*, profile_id: int) -> Profile | None:
    return Profile.objects.filter(pk=profile_id).first()


@dataclass(frozen=True)
class MessagePreview:
    subject: str
    html: str
    text: str
    json: str


def preview_context(*, campaign: Campaign, profile: Profile, viewer: Any) -> dict[str, Any]:
    """What a message sees in a preview or a test send: the profile as `viewer` may see it
    (PII traits masked for roles that may not see them, as on the profile page), no event,
    no unsubscribe token."""
    computed = profile_computed_features(profile, now=timezone.now())
    return {
        "profile": {
            "id": profile.pk,
            "traits": pii_for(viewer).traits(profile.traits),
            "computed": {key: _plain(value) for key, value in computed.items()},
        },
        "event": {"name": "", "properties": {}},
        "campaign": {"name": campaign.name},
        "unsubscribe_url": "#unsubscribe",
        "recommendations": RecommendationSlots(profile),
    }


def message_preview(
    *, campaign: Campaign, message: dict[str, Any], profile: Profile, viewer: Any
) -> MessagePreview:
    """A send step's message rendered for a profile, as the editor shows it (nothing is
    recorded). Raises messages.RenderError."""
    context = preview_context(campaign=campaign, profile=profile, viewer=viewer)
    if "subject" in message:
        return MessagePreview(
            subject=render(message["subject"], context, html=False),
            html=render(message["html"], context, html=True) if "html" in message else "",
            text=render(message["text"], context, html=False) if "text" in message else "",
            json="",
        )
    body = json.dumps(render_json(message, context), indent=2, ensure_ascii=False)
    return MessagePreview(subject="", html="", text="", json=body)


def staff_address_known(*, address: str) -> bool:
    """Test sends go only to the addresses of active staff accounts."""
    return (
        get_user_model()
        .objects.filter(is_active=True, email__iexact=address.strip())
        .exclude(email="")
        .exists()
    )


def delivery_events(*, delivery: Delivery) -> QuerySet[DeliveryEvent]:
    return delivery.events.order_by("at", "id")


def bandit_allocation_latest(*, campaign: Campaign) -> list[BanditAllocation]:
    """The rows of the campaign's latest bandit allocation (one per variant), or []."""
    latest = BanditAllocation.objects.filter(campaign=campaign).aggregate(at=Max("at"))["at"]
    if latest is None:
        return []
    return list(BanditAllocation.objects.filter(campaign=campaign, at=latest).order_by("variant"))


def bandit_allocations(*, campaign: Campaign) -> QuerySet[BanditAllocation]:
    """The bandit's allocation over time, oldest first."""
    return BanditAllocation.objects.filter(campaign=campaign).order_by("at", "variant")


def recommendation_block_outcome(run_id: int) -> tuple[int, int]:
    """(impressions, clicks) of one recommender run in sent emails: the recommendation blocks
    it served that a sent email linked, and how many of those a person clicked at least once
    (clicks flagged as machine-made left out). Registered as a source of
    recommendations.outcomes (CampaignsConfig.ready)."""
    blocks = RecommendationImpression.objects.filter(
        model_run_id=run_id, delivery__status=Delivery.Status.SENT
    )
    clicked = DeliveryEvent.objects.filter(
        recommendation=OuterRef("pk"), kind=DeliveryEvent.Kind.CLICK, bot_reason=""
    )
    counts = blocks.aggregate(impressions=Count("pk"), clicks=Count("pk", filter=Exists(clicked)))
    return counts["impressions"], counts["clicks"]
