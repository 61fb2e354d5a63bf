"""The campaigns side of a profile merge, registered as an identity merge hook
(`identity.hooks`; see `CampaignsConfig.ready`).

On merge the duplicate's journeys and deliveries move to the survivor, which now holds the
duplicate's events and identities: a journey's goal is then found among the survivor's events,
its branches read the survivor, and its sends go to the survivor's address. The moved entries
are numbered after the survivor's own (entry numbers count a person's entries per campaign).
On unmerge they move back with their old numbers; journeys entered since stay with the survivor.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Max

from campaigns.models import Delivery, Entry
from identity.hooks import merge_hook_register
from profiles.models import Profile

HOOK_NAME = "campaigns"


def campaign_entries_merge(*, survivor: Profile, duplicate: Profile) -> dict[str, Any]:
    moved = list(
        Entry.objects.filter(profile=duplicate)
        .order_by("entered_at", "pk")
        .values_list("pk", "campaign_id", "number")
    )
    if not moved:
        return {}
    top = dict(
        Entry.objects.filter(profile=survivor)
        .values("campaign_id")
        .annotate(top=Max("number"))
        .values_list("campaign_id", "top")
    )
    for pk, campaign_id, _ in moved:
        top[campaign_id] = top.get(campaign_id, 0) + 1
        Entry.objects.filter(pk=pk).update(profile=survivor, number=top[campaign_id])
    deliveries = list(Delivery.objects.filter(profile=duplicate).values_list("pk", flat=True))
    Delivery.objects.filter(pk__in=deliveries).update(profile=survivor)
    return {"entries": [[pk, number] for pk, _, number in moved], "deliveries": deliveries}


def campaign_entries_unmerge(
    *, survivor: Profile, duplicate: Profile, state: dict[str, Any]
) -> None:
    for pk, number in state.get("entries", []):
        Entry.objects.filter(pk=pk, profile=survivor).update(profile=duplicate, number=number)
    Delivery.objects.filter(pk__in=state.get("deliveries", []), profile=survivor).update(
        profile=duplicate
    )


def register() -> None:
    merge_hook_register(campaign_entries_merge, name=HOOK_NAME, unmerge=campaign_entries_unmerge)
