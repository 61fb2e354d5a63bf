"""Experiments: who gets which variant (or nothing: the control group and the workspace
holdout), and the bandit's allocation as conversions arrive.

A person's arm is chosen once per campaign, at their first delivery of it, and every later
delivery of the campaign (retries are the same row; re-entries and later send steps are new
rows) keeps it: the first one is found and copied. The choice itself is a stable hash of
(campaign, person): a fixed split puts the hash into the variants' weights; a bandit puts it
into the shares of its latest allocation (Thompson sampling, campaigns.stats). The control
group and the holdout are hashes too, with their own salts, so the three choices are
independent of each other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns import definition as steps_language
from campaigns import results, selectors, stats
from campaigns.models import BanditAllocation, Campaign, Delivery, Entry


@dataclass(frozen=True)
class Arm:
    variant: str
    is_control: bool


UNTESTED = Arm("", False)


def arm_assign(*, entry: Entry) -> Arm:
    """The arm of the person of this entry in its campaign (see the module): the one recorded
    on their earlier deliveries of the campaign when it still exists, else a new choice."""
    definition = entry.version.definition
    experiment = steps_language.experiment_step(definition["steps"])
    control = definition.get("control") if entry.campaign.kind == Campaign.Kind.MARKETING else None
    if experiment is None and control is None:
        return UNTESTED
    names = [variant["name"] for variant in experiment[1]["variants"]] if experiment else [""]
    earlier = (
        Delivery.objects.filter(campaign_id=entry.campaign_id, profile_id=entry.profile_id)
        .order_by("pk")
        .values_list("variant", "is_control")
        .first()
    )
    if earlier is not None:
        variant, is_control = earlier
        if (is_control and control is not None) or (not is_control and variant in names):
            return Arm(variant, is_control)
    if control is not None and in_control(
        campaign_id=entry.campaign_id, profile_id=entry.profile_id, percent=control["percent"]
    ):
        return Arm("", True)
    if experiment is None:
        return UNTESTED
    send = experiment[1]
    shares = (
        bandit_shares_current(campaign=entry.campaign, names=names)
        if send.get("allocation") == "bandit"
        else stats.split_shares(steps_language.variant_weights(send)).tolist()
    )
    unit = stats.stable_unit("variant", entry.campaign_id, entry.profile_id)
    return Arm(names[int(stats.arms_pick([unit], shares)[0])], False)


def in_control(*, campaign_id: int, profile_id: int, percent: float) -> bool:
    return stats.stable_unit("control", campaign_id, profile_id) < percent / 100


def in_holdout(*, profile_id: int) -> bool:
    """Whether the person is in the workspace holdout (CAMPAIGN_HOLDOUT_PERCENT of people,
    fixed by their id): they receive no marketing at all, to measure what it all adds up to."""
    percent = settings.CAMPAIGN_HOLDOUT_PERCENT
    return percent > 0 and stats.stable_unit("holdout", profile_id) < percent / 100


def bandit_shares_current(*, campaign: Campaign, names: list[str]) -> list[float]:
    """The shares of the campaign's latest allocation, in the order of `names`; refreshed
    first when it does not cover exactly these variants (the first person, a new version)."""
    latest = selectors.bandit_allocation_latest(campaign=campaign)
    if {row.variant for row in latest} != set(names):
        latest = bandit_refresh(campaign=campaign)
    share = {row.variant: row.share for row in latest}
    return [share[name] for name in names]


@transaction.atomic
def bandit_refresh(*, campaign: Campaign, now: dt.datetime | None = None) -> list[BanditAllocation]:
    """Recompute a bandit's posteriors from the attributed conversions so far and record the
    allocation they give (unless nothing changed since the last one). Returns the rows in
    force, or [] for a campaign that runs no bandit."""
    now = now or timezone.now()
    version = selectors.campaign_version_current(campaign=campaign)
    experiment = steps_language.experiment_step(version.definition["steps"])
    if experiment is None or experiment[1].get("allocation") != "bandit":
        return []
    Campaign.objects.select_for_update().filter(pk=campaign.pk).first()
    names = [variant["name"] for variant in experiment[1]["variants"]]
    counts = results.arm_counts(campaign=campaign)
    exposed = [counts.get(name, (0, 0))[0] for name in names]
    converted = [counts.get(name, (0, 0))[1] for name in names]
    latest = selectors.bandit_allocation_latest(campaign=campaign)
    previous = {row.variant: (row.exposed, row.converted) for row in latest}
    if previous == dict(zip(names, zip(exposed, converted, strict=True), strict=True)):
        return latest
    best, shares = stats.bandit_shares(converted, exposed)
    rows = [
        BanditAllocation(
            campaign=campaign,
            at=now,
            variant=name,
            exposed=exposed[index],
            converted=converted[index],
            probability_best=float(best[index]),
            share=float(shares[index]),
        )
        for index, name in enumerate(names)
    ]
    return BanditAllocation.objects.bulk_create(rows)


def bandits_refresh(*, now: dt.datetime | None = None) -> int:
    """Beat: refresh every live bandit campaign; returns how many allocations changed."""
    changed = 0
    for live in selectors.campaigns_live():
        experiment = steps_language.experiment_step(live.definition["steps"])
        if experiment is None or experiment[1].get("allocation") != "bandit":
            continue
        before = selectors.bandit_allocation_latest(campaign=live.campaign)
        after = bandit_refresh(campaign=live.campaign, now=now)
        changed += bool(after) and [r.pk for r in before] != [r.pk for r in after]
    return changed
