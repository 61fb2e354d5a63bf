"""Reads: what campaigns achieved. Attribution of conversions, an experiment's results (the
API's `GET /api/v1/campaigns/{id}/results/` and the results page), the marketing dashboard
across campaigns, and the total lift of all marketing against the workspace holdout
(`holdout_report`, on the dashboard and `GET /api/v1/campaigns/holdout/`). The statistics
are campaigns.stats'.

Attribution. The unit is a person in an arm (a variant, or the control group; a person's arm
is fixed per campaign, campaigns.services.experiments). A *touch* is a delivery that reached
the person (`sent_at`) or, in the control group, would have (`would_send_at`: every rule
passed, nothing sent). A conversion is the goal event of the touch's version within its goal
window after the touch, credited to the person's last touch in the campaign before it (last
touch); its `revenue` property (a number) is the revenue. People in the workspace holdout are
no arm of any campaign. Rates are per recipient (everyone assigned to the arm, sent or skipped
for a rule: the rules apply to every arm alike, the control group included), so arms compare
as randomised (intention to treat).

Opens and clicks count people with a human open or click (`Delivery.opened_at`/`clicked_at`);
opens and clicks flagged as machine-made (campaigns.bots) are counted apart.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Count, Q
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from access.parsers import unstorable
from campaigns import definition as steps_language
from campaigns import stats
from campaigns.models import Campaign, CampaignVersion, Delivery, DeliveryEvent
from campaigns.selectors import campaign_version_current
from profiles.features import ORDER_COMPLETED
from profiles.models import Event
from profiles.services import amount_converted, currency_rates, order_currency

# How the control group is named in results, beside the variants.
CONTROL = "control"
# The name of the one message of a campaign that tests no variants.
SINGLE = "message"
TEST_WORDS = (
    "Always-valid p-values from a mixture sequential probability ratio test (mSPRT) for two "
    "proportions; conversion-rate intervals are 95% confidence sequences. Both stay valid "
    "however often the results are checked. They assume independent people, each in one arm, "
    "and a normal approximation for the difference of rates (reasonable from a few conversions "
    "per arm)."
)


@dataclass
class _Person:
    variant: str
    is_control: bool
    entered: dt.datetime
    sent: bool = False
    delivered: bool = False
    opened: bool = False
    clicked: bool = False
    converted_at: dt.datetime | None = None
    revenue: float = 0.0
    revenue_unconverted: dict[str, float] = field(default_factory=dict)  # no rate: apart
    touches: list[tuple[dt.datetime, int, int]] = field(default_factory=list)


@dataclass
class Attribution:
    """Per person: their arm and outcomes; per delivery: conversions and revenue credited."""

    people: dict[int, _Person]
    credited: dict[int, tuple[int, float]]


def _revenue(properties: Any, rates: Mapping[str, Decimal]) -> tuple[float, str]:
    """The goal event's revenue in the workspace currency, with "" for its currency; or, in a
    currency without a rate, the amount as it is with its currency (counted apart)."""
    value = properties.get("revenue") if isinstance(properties, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        return 0.0, ""
    currency = order_currency(properties)
    converted = amount_converted(Decimal(str(value)), currency, rates)
    if converted is None:
        return float(value), currency
    return float(converted), ""


def campaign_attribution(*, campaign: Campaign, now: dt.datetime | None = None) -> Attribution:
    """Who was in which arm, and which goal events are credited to which delivery (module)."""
    now = now or timezone.now()
    goals: dict[int, Mapping[str, Any]] = {
        pk: definition["goal"]
        for pk, definition in CampaignVersion.objects.filter(campaign=campaign).values_list(
            "pk", "definition"
        )
        if definition.get("goal")
    }
    rows = (
        Delivery.objects.filter(campaign=campaign)
        .exclude(skip_reason=Delivery.SkipReason.HOLDOUT)
        .order_by("pk")
        .values_list(
            "pk",
            "profile_id",
            "variant",
            "is_control",
            "created_at",
            "sent_at",
            "would_send_at",
            "opened_at",
            "clicked_at",
            "version_id",
        )
    )
    bounced = set(
        DeliveryEvent.objects.filter(
            delivery__campaign=campaign, kind=DeliveryEvent.Kind.BOUNCE
        ).values_list("delivery_id", flat=True)
    )
    people: dict[int, _Person] = {}
    for pk, profile_id, variant, is_control, created, sent, would, opened, clicked, version in rows:
        person = people.get(profile_id)
        if person is None:
            person = people[profile_id] = _Person(variant, is_control, created)
        person.sent |= sent is not None
        person.delivered |= sent is not None and pk not in bounced
        person.opened |= opened is not None
        person.clicked |= clicked is not None
        touched = sent or would
        if touched is not None:
            person.touches.append((touched, pk, version))
    credited: dict[int, tuple[int, float]] = {}
    touched_people = [pk for pk, person in people.items() if person.touches]
    if not goals or not touched_people:
        return Attribution(people, credited)
    for pk in touched_people:
        people[pk].touches.sort()
    windows = {pk: steps_language.duration(goal["within"]) for pk, goal in goals.items()}
    rates = currency_rates()
    first = min(t[0] for pk in touched_people for t in people[pk].touches)
    events = (
        Event.objects.filter(
            profile_id__in=Delivery.objects.filter(campaign=campaign).values("profile_id"),
            event__in={goal["event"] for goal in goals.values()},
            timestamp__gte=first,
        )
        .order_by("timestamp", "pk")
        .values_list("profile_id", "event", "timestamp", "properties")
    )
    for profile_id, name, timestamp, properties in events.iterator(chunk_size=2000):
        person = people.get(profile_id)
        if person is None or not person.touches:
            continue
        index = bisect.bisect_right(person.touches, (timestamp, 2**63, 2**63)) - 1
        if index < 0:
            continue
        touched, delivery_id, version = person.touches[index]
        goal = goals.get(version)
        if goal is None or timestamp > touched + windows[version]:
            continue
        if not steps_language.occurrence_matches(goal, name, timestamp, properties, now):
            continue
        revenue, unconverted_currency = _revenue(properties, rates)
        if person.converted_at is None:
            person.converted_at = timestamp
        if unconverted_currency:
            apart = person.revenue_unconverted
            apart[unconverted_currency] = apart.get(unconverted_currency, 0.0) + revenue
            revenue = 0.0
        person.revenue += revenue
        count, total = credited.get(delivery_id, (0, 0.0))
        credited[delivery_id] = (count + 1, total + revenue)
    return Attribution(people, credited)


def _unconverted_sum(members: list[_Person]) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for person in members:
        for currency, amount in person.revenue_unconverted.items():
            totals[currency] += amount
    return {currency: round(amount, 2) for currency, amount in sorted(totals.items())}


def _arm_key(person: _Person) -> str:
    return CONTROL if person.is_control else person.variant


def arm_counts(*, campaign: Campaign) -> dict[str, tuple[int, int]]:
    """{variant: (recipients, converted people)} (the bandit's posteriors read these)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for person in campaign_attribution(campaign=campaign).people.values():
        if not person.is_control:
            counts[person.variant][0] += 1
            counts[person.variant][1] += person.converted_at is not None
    return {name: (pair[0], pair[1]) for name, pair in counts.items()}


def _variant_names(definition: Mapping[str, Any], people: Mapping[int, _Person]) -> list[str]:
    """The current version's variants in their order, then any only earlier versions had."""
    experiment = steps_language.experiment_step(definition["steps"])
    names = [v["name"] for v in experiment[1]["variants"]] if experiment else [""]
    seen = {person.variant for person in people.values() if not person.is_control}
    return names + sorted(seen - set(names))


def _bot_counts(campaign: Campaign) -> dict[tuple[str, bool], dict[str, int]]:
    rows = (
        DeliveryEvent.objects.filter(delivery__campaign=campaign)
        .exclude(bot_reason="")
        .values_list("delivery__variant", "delivery__is_control", "kind")
        .annotate(n=Count("id"))
    )
    found: dict[tuple[str, bool], dict[str, int]] = defaultdict(lambda: {"open": 0, "click": 0})
    for variant, is_control, kind, n in rows:
        found[(variant, is_control)][kind] = n
    return found


def campaign_results(*, campaign: Campaign, now: dt.datetime | None = None) -> dict[str, Any]:
    """The experiment's results in the API's shape, plus the series the results page draws
    (under "series", which the API leaves out)."""
    now = now or timezone.now()
    attribution = campaign_attribution(campaign=campaign, now=now)
    people = attribution.people
    definition = campaign_version_current(campaign=campaign).definition
    names = _variant_names(definition, people)
    has_control = any(person.is_control for person in people.values()) or bool(
        definition.get("control")
    )
    keys = names + ([CONTROL] if has_control else [])
    bots = _bot_counts(campaign)
    arms: dict[str, dict[str, Any]] = {}
    for key in keys:
        members = [p for p in people.values() if _arm_key(p) == key]
        recipients = len(members)
        converted = sum(p.converted_at is not None for p in members)
        bot = bots.get((key, False) if key != CONTROL else ("", True), {"open": 0, "click": 0})
        arms[key] = {
            "name": (key or SINGLE) if key != CONTROL else CONTROL,
            "recipients": recipients,
            "sent": sum(p.sent for p in members),
            "delivered": sum(p.delivered for p in members),
            "opened": sum(p.opened for p in members),
            "clicked": sum(p.clicked for p in members),
            "converted": converted,
            "revenue": round(sum(p.revenue for p in members), 2),
            "revenue_unconverted": _unconverted_sum(members),
            "conversion_rate": converted / recipients if recipients else None,
            "ci95": list(stats.rate_interval(converted, recipients)),
            "lift_vs_control": None,
            "p_value": None,
            "probability_best": None,
            "bot_opened": bot["open"],
            "bot_clicked": bot["click"],
        }
    series = _series(people, keys)
    baseline = CONTROL if has_control else names[0]
    for key in keys:
        if key == baseline:
            continue
        arms[key]["lift_vs_control"] = stats.relative_lift(
            arms[key]["conversion_rate"], arms[baseline]["conversion_rate"]
        )
        if series["days"]:
            path = stats.always_valid_p(
                series["converted"][baseline],
                series["recipients"][baseline],
                series["converted"][key],
                series["recipients"][key],
            )
            arms[key]["p_value"] = float(path[-1])
    if any(arms[key]["recipients"] for key in keys):
        best = stats.probability_best(
            *stats.beta_posteriors(
                [arms[key]["converted"] for key in keys], [arms[key]["recipients"] for key in keys]
            )
        )
        for index, key in enumerate(keys):
            arms[key]["probability_best"] = float(best[index])
    goal = definition.get("goal")
    return {
        "variants": [arms[key] for key in names],
        "control": arms.get(CONTROL),
        "decision": _decision(arms, names, baseline, has_goal=bool(goal)),
        "test": TEST_WORDS,
        "series": series,
    }


def _series(people: Mapping[int, _Person], keys: list[str]) -> dict[str, Any]:
    """Per day (UTC) since the first person entered: cumulative recipients and converted
    people per arm, and each arm's rate with its confidence sequence."""
    if not people:
        return {"days": [], "recipients": {}, "converted": {}, "rate": {}, "low": {}, "high": {}}
    start = min(p.entered for p in people.values()).date()
    moments = [p.entered for p in people.values()]
    moments += [p.converted_at for p in people.values() if p.converted_at is not None]
    end = max(moments).date()
    days = (end - start).days + 1
    series: dict[str, Any] = {
        "days": [(start + dt.timedelta(days=d)).isoformat() for d in range(days)],
        "recipients": {},
        "converted": {},
        "rate": {},
        "low": {},
        "high": {},
    }
    for key in keys:
        entered = np.zeros(days, dtype=int)
        converted = np.zeros(days, dtype=int)
        for person in people.values():
            if _arm_key(person) != key:
                continue
            entered[(person.entered.date() - start).days] += 1
            if person.converted_at is not None:
                # A conversion counts from the day its person entered on, at the earliest.
                day = max(person.converted_at.date(), person.entered.date())
                converted[(day - start).days] += 1
        n, x = entered.cumsum(), converted.cumsum()
        bands = [stats.rate_interval(int(a), int(b)) for a, b in zip(x, n, strict=True)]
        series["recipients"][key] = n.tolist()
        series["converted"][key] = x.tolist()
        series["rate"][key] = [float(a / b) if b else None for a, b in zip(x, n, strict=True)]
        series["low"][key] = [low for low, _ in bands]
        series["high"][key] = [high for _, high in bands]
    return series


def _decision(
    arms: Mapping[str, dict[str, Any]], names: list[str], baseline: str, *, has_goal: bool
) -> str:
    if not has_goal:
        return "The campaign has no goal, so no conversions are measured: set one to compare."
    if not any(arm["recipients"] for arm in arms.values()):
        return "Nobody has entered yet."
    others = [key for key in arms if key != baseline]
    if not others:
        return "Nothing to compare: add variants or a control group."
    # Several comparisons with one baseline share the 5% (Bonferroni).
    level = stats.ALPHA / len(others)
    label = "the control group" if baseline == CONTROL else f"variant {baseline or SINGLE}"
    winners = [
        key for key in others if arms[key]["p_value"] is not None and arms[key]["p_value"] <= level
    ]
    if not winners:
        return (
            f"No difference from {label} is significant yet (always-valid p > {level:.3g} "
            "for every comparison). Keep the test running: checking again does not spoil it."
        )
    parts = []
    for key in winners:
        arm = arms[key]
        lift = arm["lift_vs_control"]
        direction = "better" if (lift or 0) > 0 else "worse"
        lift_words = f" ({lift:+.0%} relative)" if lift is not None else ""
        parts.append(
            f"{arm['name']} converts {direction} than {label}{lift_words}, "
            f"always-valid p = {arm['p_value']:.3g}"
        )
    best = max(winners, key=lambda key: arms[key]["conversion_rate"] or 0)
    verdict = (
        f"Send {arms[best]['name']}."
        if (arms[best]["lift_vs_control"] or 0) > 0
        else f"Keep {label}."
    )
    return "; ".join(parts) + ". " + verdict


# --- the marketing dashboard -----------------------------------------------------------------


def marketing_dashboard(*, since: dt.datetime, now: dt.datetime | None = None) -> dict[str, Any]:
    """Every campaign's sends since `since`, per day (of sending, UTC) and channel kind:
    sent, opened, clicked, click-through rate, conversions and revenue credited to those
    sends (per recipient), unsubscribes and bounces; and the totals."""
    now = now or timezone.now()
    sent = Delivery.objects.filter(status=Delivery.Status.SENT, sent_at__gte=since)
    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(day: dt.date, kind: str) -> dict[str, Any]:
        return rows.setdefault(
            (day.isoformat(), kind),
            {
                "day": day.isoformat(),
                "channel": kind,
                "sent": 0,
                "opened": 0,
                "clicked": 0,
                "converted": 0,
                "revenue": 0.0,
                "unsubscribed": 0,
                "bounced": 0,
            },
        )

    for day, kind, n, opened, clicked in (
        sent.annotate(day=TruncDate("sent_at", tzinfo=dt.UTC))
        .values_list("day", "channel__kind")
        .annotate(
            n=Count("id"),
            opened=Count("id", filter=Q(opened_at__isnull=False)),
            clicked=Count("id", filter=Q(clicked_at__isnull=False)),
        )
    ):
        row(day, kind).update(sent=n, opened=opened, clicked=clicked)
    for day, kind, event_kind, n in (
        DeliveryEvent.objects.filter(
            at__gte=since, kind__in=[DeliveryEvent.Kind.UNSUBSCRIBE, DeliveryEvent.Kind.BOUNCE]
        )
        .annotate(day=TruncDate("at", tzinfo=dt.UTC))
        .values_list("day", "delivery__channel__kind", "kind")
        .annotate(n=Count("id"))
    ):
        field_name = "unsubscribed" if event_kind == DeliveryEvent.Kind.UNSUBSCRIBE else "bounced"
        row(day, kind)[field_name] = n
    campaigns = Campaign.objects.filter(pk__in=sent.values("campaign_id").distinct())
    sends = {
        pk: (sent_at, kind)
        for pk, sent_at, kind in sent.values_list("pk", "sent_at", "channel__kind")
        if sent_at is not None
    }
    for campaign in campaigns:
        for delivery_id, (count, revenue) in campaign_attribution(
            campaign=campaign, now=now
        ).credited.items():
            if delivery_id in sends:
                sent_at, kind = sends[delivery_id]
                target = row(sent_at.astimezone(dt.UTC).date(), kind)
                target["converted"] += count
                target["revenue"] += revenue
    ordered = [rows[key] for key in sorted(rows)]
    for item in ordered:
        _rates(item)
    totals: dict[str, Any] = {
        key: sum(item[key] for item in ordered)
        for key in ("sent", "opened", "clicked", "converted", "revenue", "unsubscribed", "bounced")
    }
    _rates(totals)
    return {"rows": ordered, "totals": totals}


def _rates(item: dict[str, Any]) -> None:
    sent = item["sent"]
    item["revenue"] = round(item["revenue"], 2)
    item["ctr"] = item["clicked"] / sent if sent else None
    item["conversion_rate"] = item["converted"] / sent if sent else None
    item["revenue_per_recipient"] = round(item["revenue"] / sent, 4) if sent else None


# --- total lift against the workspace holdout -------------------------------------------------

# The conversion the holdout report counts unless asked for another event: a purchase
# (Segment's e-commerce spec), whose `revenue` is the revenue.
HOLDOUT_GOAL_EVENT = ORDER_COMPLETED
EVENT_NAME_MAX = 255  # profiles.Event.event


def holdout_event_problem(event: str) -> str:
    """Why this cannot be the holdout report's conversion event ("" when it can)."""
    if not event.strip():
        return "Name the event that counts as a conversion."
    if len(event) > EVENT_NAME_MAX:
        return f"An event name has at most {EVENT_NAME_MAX} characters."
    return unstorable(event) or ""


def holdout_report(
    *, since: dt.datetime, now: dt.datetime | None = None, event: str = HOLDOUT_GOAL_EVENT
) -> dict[str, Any]:
    """What all marketing together adds, measured against the workspace holdout
    (CAMPAIGN_HOLDOUT_PERCENT of people, fixed by a hash of their id, receive none).

    Who is compared: the people a marketing campaign reached in the window [since, now): a
    delivery of theirs passed every sending rule there (sent, failed in transport, or held
    back as a campaign's control group or as the holdout; its time is `sent_at`, else
    `would_send_at`, else when it failed). The holdout is decided after every other rule, so
    both groups are people a message would have reached at that moment, split at random
    (intention to treat: a person of a campaign's control group counts with the marketed).
    What counts: a person converted when they did `event` (a purchase by default) at or after
    their first reach in the window and before its end; revenue is those events' `revenue`
    in the workspace currency (events in a currency without a rate left out).
    The difference of conversion rates has an always-valid 95% interval and p-value
    (campaigns.stats, mSPRT, the same test as the experiments'); the relative lift's interval
    is that interval over the holdout's rate."""
    now = now or timezone.now()
    percent = settings.CAMPAIGN_HOLDOUT_PERCENT
    report: dict[str, Any] = {
        "configured": percent > 0,
        "percent": percent,
        "event": event,
        "since": since.isoformat(),
        "until": now.isoformat(),
        "holdout": None,
        "marketed": None,
        "difference": None,
        "difference_ci95": None,
        "lift": None,
        "lift_ci95": None,
        "p_value": None,
    }
    if percent <= 0:
        report["decision"] = (
            "No holdout configured (CAMPAIGN_HOLDOUT_PERCENT is 0): everyone eligible receives "
            "marketing, so there is nobody to measure its total lift against."
        )
        return report
    reached = (
        Delivery.objects.filter(campaign__kind=Campaign.Kind.MARKETING)
        .filter(
            Q(status__in=[Delivery.Status.SENT, Delivery.Status.FAILED])
            | Q(skip_reason__in=[Delivery.SkipReason.CONTROL, Delivery.SkipReason.HOLDOUT])
        )
        .annotate(reached=Coalesce("sent_at", "would_send_at", "updated_at"))
        .filter(reached__gte=since, reached__lt=now)
        .values_list("profile_id", "skip_reason", "reached")
    )
    first: dict[int, dt.datetime] = {}
    held_out: set[int] = set()
    for profile_id, skip_reason, at in reached.iterator(chunk_size=5000):
        if profile_id not in first or at < first[profile_id]:
            first[profile_id] = at
        if skip_reason == Delivery.SkipReason.HOLDOUT:
            held_out.add(profile_id)
    converted: set[int] = set()
    revenue: dict[int, float] = defaultdict(float)
    people = list(first)
    rates = currency_rates()
    for start in range(0, len(people), 5000):
        chunk = people[start : start + 5000]
        for profile_id, timestamp, properties in Event.objects.filter(
            profile_id__in=chunk, event=event, timestamp__gte=since, timestamp__lt=now
        ).values_list("profile_id", "timestamp", "properties"):
            if timestamp >= first[profile_id]:
                converted.add(profile_id)
                amount, without_rate = _revenue(properties, rates)
                if not without_rate:  # a currency without a rate is not added as it is
                    revenue[profile_id] += amount

    def group(members: set[int]) -> dict[str, Any]:
        n, x = len(members), len(members & converted)
        total = round(sum(revenue[pk] for pk in members), 2)
        return {
            "people": n,
            "converted": x,
            "conversion_rate": x / n if n else None,
            "ci95": list(stats.rate_interval(x, n)),
            "revenue": total,
            "revenue_per_person": round(total / n, 4) if n else None,
        }

    holdout, marketed = group(held_out), group(set(first) - held_out)
    report.update(holdout=holdout, marketed=marketed)
    interval = stats.difference_interval(
        holdout["converted"], holdout["people"], marketed["converted"], marketed["people"]
    )
    if interval is None:
        report["decision"] = (
            f"Nobody {'in the holdout' if not holdout['people'] else 'outside the holdout'} was "
            "reached by a marketing campaign in this window: nothing to compare yet."
        )
        return report
    base = holdout["conversion_rate"]
    report["difference"] = marketed["conversion_rate"] - base
    report["difference_ci95"] = list(interval)
    report["lift"] = stats.relative_lift(marketed["conversion_rate"], base)
    report["lift_ci95"] = [bound / base for bound in interval] if base else None
    report["p_value"] = float(
        stats.always_valid_p(
            [holdout["converted"]],
            [holdout["people"]],
            [marketed["converted"]],
            [marketed["people"]],
        )[-1]
    )
    report["decision"] = _holdout_words(report)
    return report


def _holdout_words(report: Mapping[str, Any]) -> str:
    marketed, holdout = report["marketed"], report["holdout"]
    low, high = report["difference_ci95"]
    said = (
        f"People marketing could reach converted ({report['event']}) at "
        f"{marketed['conversion_rate']:.1%} against {holdout['conversion_rate']:.1%} in the "
        f"holdout: {report['difference'] * 100:+.2f} points (95% always-valid interval "
        f"{low * 100:+.2f} to {high * 100:+.2f})"
    )
    if report["lift"] is not None:
        said += f", a relative lift of {report['lift']:+.0%}"
    if report["p_value"] < stats.ALPHA:
        verdict = (
            "Marketing as a whole adds conversions, beyond doubt."
            if report["difference"] > 0
            else "Marketing as a whole costs conversions, beyond doubt."
        )
    else:
        verdict = (
            f"That cannot be told apart from no effect yet (p = {report['p_value']:.2f}); "
            "the figure stays valid however often it is read, so keep measuring."
        )
    return f"{said}. {verdict}"
