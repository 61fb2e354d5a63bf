"""Writes of campaigns (with their versions) and channels. Every change is audited."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from access.outbound import outbound_url_problem
from access.services import audit_record
from campaigns import selectors
from campaigns.definition import InvalidCampaign, channel_config_errors, definition_validate
from campaigns.models import Campaign, CampaignVersion, Channel, Entry, new_secret_salt
from campaigns.secrets import channel_secret
from campaigns.services.journeys import campaign_entries_exit
from consent.selectors import UnknownPurposeError, purpose_get
from segments.conditions import ConditionError
from segments.selectors import segment_get


class CampaignStateError(ValueError):
    """A status change the campaign's current status does not allow (the message says why)."""


def campaign_definition_check(*, definition: Any) -> None:
    """Raise InvalidCampaign (errors with JSON pointers) unless the definition is usable."""
    channel_ids: set[int] = set()
    if isinstance(definition, dict) and isinstance(definition.get("steps"), list):
        channel_ids = _channel_ids(definition["steps"])
    kinds = selectors.channel_kinds(channel_ids=channel_ids) if channel_ids else {}
    definition_validate(
        definition,
        channel_kind=kinds.get,
        segment_exists=lambda segment_id: segment_get(segment_id=segment_id) is not None,
    )


def _channel_ids(steps: list[Any]) -> set[int]:
    """Channel ids named by send steps, looked up once before validation (which walks the
    steps only once they have the right shape, so this reads them defensively)."""
    found: set[int] = set()
    for step in steps:
        if not isinstance(step, dict):
            continue
        send = step.get("send")
        if isinstance(send, dict) and isinstance(send.get("channel"), int):
            found.add(send["channel"])
        branch = step.get("branch")
        if isinstance(branch, dict):
            for arm in ("then", "else"):
                if isinstance(branch.get(arm), list):
                    found |= _channel_ids(branch[arm])
    return found


@transaction.atomic
def campaign_create(
    *, name: str, kind: str, definition: dict[str, Any], status: str, actor: Any
) -> Campaign:
    campaign_definition_check(definition=definition)
    user = actor if getattr(actor, "pk", None) else None
    campaign = Campaign.objects.create(name=name, kind=kind, created_by=user)
    CampaignVersion.objects.create(
        campaign=campaign, number=1, definition=definition, created_by=user
    )
    audit_record(
        actor=actor,
        action="campaign.create",
        resource="campaigns",
        resource_id=campaign.pk,
        details={"kind": kind},
    )
    if status != Campaign.Status.DRAFT:
        campaign_status_set(campaign=campaign, status=status, actor=actor)
    return campaign


@transaction.atomic
def campaign_update(
    *,
    campaign: Campaign,
    actor: Any,
    name: str | None = None,
    kind: str | None = None,
    definition: dict[str, Any] | None = None,
    status: str | None = None,
) -> Campaign:
    """Change a campaign. A new definition becomes a new version unless the campaign is a
    draft nobody entered: people inside finish the version they entered."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    changed: list[str] = []
    if name is not None and name != campaign.name:
        campaign.name = name
        changed.append("name")
    if kind is not None and kind != campaign.kind:
        campaign.kind = kind
        changed.append("kind")
    if changed:
        campaign.save(update_fields=[*changed, "updated_at"])
    if definition is not None:
        current = selectors.campaign_version_current(campaign=campaign)
        if definition != current.definition:
            campaign_definition_check(definition=definition)
            user = actor if getattr(actor, "pk", None) else None
            in_place = (
                campaign.status == Campaign.Status.DRAFT
                and not Entry.objects.filter(version=current).exists()
            )
            if in_place:
                current.definition = definition
                current.save(update_fields=["definition"])
            else:
                CampaignVersion.objects.create(
                    campaign=campaign,
                    number=current.number + 1,
                    definition=definition,
                    created_by=user,
                )
            changed.append("definition")
    if changed:
        audit_record(
            actor=actor,
            action="campaign.update",
            resource="campaigns",
            resource_id=campaign.pk,
            details={"changed": changed},
        )
    if status is not None and status != campaign.status:
        campaign_status_set(campaign=campaign, status=status, actor=actor)
    return campaign


_ALLOWED = {
    Campaign.Status.DRAFT: {Campaign.Status.ACTIVE, Campaign.Status.ARCHIVED},
    Campaign.Status.ACTIVE: {Campaign.Status.PAUSED, Campaign.Status.ARCHIVED},
    Campaign.Status.PAUSED: {Campaign.Status.ACTIVE, Campaign.Status.ARCHIVED},
    Campaign.Status.ARCHIVED: set(),
}


@transaction.atomic
def campaign_status_set(*, campaign: Campaign, status: str, actor: Any) -> Campaign:
    """Activate, pause or archive. Paused journeys hold where they are (waits that end meanwhile
    run on resume); archiving ends every journey still running."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if status == campaign.status:
        return campaign
    if status not in _ALLOWED[Campaign.Status(campaign.status)]:
        raise CampaignStateError(f"a {campaign.status} campaign cannot become {status}")
    campaign.status = status
    campaign.save(update_fields=["status", "updated_at"])
    if status == Campaign.Status.ARCHIVED:
        campaign_entries_exit(
            campaign=campaign, reason=Entry.ExitReason.CAMPAIGN_ARCHIVED, now=timezone.now()
        )
    audit_record(
        actor=actor,
        action=f"campaign.{status}",
        resource="campaigns",
        resource_id=campaign.pk,
    )
    return campaign


# --- channels --------------------------------------------------------------------------------


def channel_config_check(*, kind: str, config: Any) -> None:
    """The config's schema, then what the schema cannot tell: a webhook URL that reaches a
    private or reserved address, an unknown consent purpose."""
    errors = channel_config_errors(kind, config)
    if not errors and kind in (Channel.Kind.WEBHOOK, Channel.Kind.PUSH):
        problem = outbound_url_problem(config["url"])
        if problem:
            errors.append(ConditionError("/config/url", problem))
        if "purpose" in config:
            try:
                purpose_get(code=config["purpose"])
            except UnknownPurposeError as error:
                errors.append(ConditionError("/config/purpose", str(error)))
    if errors:
        raise InvalidCampaign(errors)


@transaction.atomic
def channel_create(
    *, kind: str, name: str, config: dict[str, Any], actor: Any
) -> tuple[Channel, str | None]:
    """Create a channel; returns it with its signing secret (webhooks), shown this once."""
    channel_config_check(kind=kind, config=config)
    channel = Channel.objects.create(
        kind=kind,
        name=name,
        config=config,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    audit_record(actor=actor, action="channel.create", resource="campaigns", resource_id=channel.pk)
    signed = kind in (Channel.Kind.WEBHOOK, Channel.Kind.PUSH)
    secret = channel_secret(channel=channel) if signed else None
    return channel, secret


@transaction.atomic
def channel_update(
    *,
    channel: Channel,
    actor: Any,
    name: str | None = None,
    config: dict[str, Any] | None = None,
    is_active: bool | None = None,
) -> Channel:
    if config is not None:
        channel_config_check(kind=channel.kind, config=config)
        channel.config = config
    if name is not None:
        channel.name = name
    if is_active is not None:
        channel.is_active = is_active
        channel.disabled_reason = "" if is_active else "disabled by staff"
        channel.failing_since = None
    channel.save()
    audit_record(actor=actor, action="channel.update", resource="campaigns", resource_id=channel.pk)
    return channel


# How long the previous secret keeps signing after a rotation.
SECRET_OVERLAP = dt.timedelta(hours=24)


@transaction.atomic
def channel_secret_rotate(*, channel: Channel, actor: Any) -> str:
    """A new signing secret for the channel, returned this once. The previous one signs too
    for SECRET_OVERLAP, so receivers can switch without refusing a delivery."""
    channel.previous_secret_salt = channel.secret_salt
    channel.previous_secret_until = timezone.now() + SECRET_OVERLAP
    channel.secret_salt = new_secret_salt()
    channel.save(
        update_fields=[
            "secret_salt",
            "previous_secret_salt",
            "previous_secret_until",
            "updated_at",
        ]
    )
    audit_record(actor=actor, action="channel.rotate", resource="campaigns", resource_id=channel.pk)
    return channel_secret(channel=channel)
