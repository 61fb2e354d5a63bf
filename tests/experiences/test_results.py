"""Impressions, clicks and conversions: events sent through the ingestion API with the
decision id are counted per variant; the bandit moves to the better variant."""

from __future__ import annotations

import base64
import itertools
import json
import random

import pytest
from django.utils import timezone

from campaigns.stats import rate_interval
from experiences.selectors import experience_results
from experiences.services import decisions_take, experience_bandit_refresh
from profiles.models import Event
from tests.conftest import WRITE_KEY
from tests.experiences.conftest import visitor

pytestmark = pytest.mark.django_db
BASIC = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()}
_messages = itertools.count(1)
TWO = [
    {"name": "A", "weight": 1, "content": {"title": "A"}},
    {"name": "B", "weight": 1, "content": {"title": "B"}},
]


def track(client, anonymous_id: str, event: str, properties: dict) -> None:
    message = {
        "anonymousId": anonymous_id,
        "event": event,
        "properties": properties,
        "messageId": f"m-{next(_messages)}",
    }
    response = client.post(
        "/v1/track",
        json.dumps(message),
        content_type="application/json",
        **BASIC,
    )
    assert response.status_code == 200, response.content


def test_viewed_and_clicked_events_count_per_variant(client, source, make_experience):
    experience = make_experience(allocation="split", variants=TWO)
    seen: dict[str, int] = {"A": 0, "B": 0}
    clicked: dict[str, int] = {"A": 0, "B": 0}
    for index in range(12):
        _, anonymous_id = visitor()
        answer = client.get(
            "/v1/decide", {"placement": "home_hero", "anonymousId": anonymous_id}, **BASIC
        ).json()
        properties = {"decision_id": answer["decision_id"], "placement": "home_hero"}
        track(client, anonymous_id, "Experience Viewed", properties)
        track(client, anonymous_id, "Experience Viewed", properties)  # a second impression
        seen[answer["variant"]] += 1
        if index % 3 == 0:
            track(client, anonymous_id, "Experience Clicked", properties)
            clicked[answer["variant"]] += 1
    # An impression naming no decision of this experience counts nowhere.
    track(client, "stranger", "Experience Viewed", {"decision_id": "not-a-decision"})
    results = experience_results(experience=experience)
    arms = {arm["name"]: arm for arm in results["arms"]}
    for name in ("A", "B"):
        assert arms[name]["assigned"] == seen[name]
        assert arms[name]["viewed"] == seen[name]
        assert arms[name]["impressions"] == 2 * seen[name]
        assert arms[name]["clicks"] == clicked[name]
        # Without a goal event, a click is the conversion.
        assert arms[name]["converted"] == clicked[name]
    assert results["goal"] == "Experience Clicked"
    assert arms["B"]["p_value"] is not None and 0 <= arms["B"]["p_value"] <= 1
    assert sum(arm["probability_best"] for arm in arms.values()) == pytest.approx(1)


def test_goal_conversions_count_only_after_the_decision(source, make_experience):
    experience = make_experience(goal_event="Order Completed", holdout_percent=30)
    people = [visitor()[0] for _ in range(30)]
    before = timezone.now()
    answers = {
        p.pk: decisions_take(placement_keys=["home_hero"], profile=p, page={})[0] for p in people
    }
    for profile in people:
        for at in (before - timezone.timedelta(days=1), timezone.now()):
            Event.objects.create(
                source=source,
                message_id=f"order-{profile.pk}-{at.timestamp()}",
                type="track",
                event="Order Completed",
                timestamp=at,
                received_at=at,
                profile=profile,
            )
    arms = {arm["name"]: arm for arm in experience_results(experience=experience)["arms"]}
    held = sum(a.variant is None for a in answers.values())
    assert arms["holdout"]["assigned"] == held > 0
    assert arms["A"]["assigned"] == 30 - held
    # Everyone ordered once after their decision (the earlier order does not count twice).
    assert arms["A"]["converted"] == 30 - held
    assert arms["holdout"]["converted"] == held
    assert results_baseline(experience) == "holdout"


def results_baseline(experience) -> str:
    return experience_results(experience=experience)["baseline"]


def test_the_bandit_moves_to_the_better_variant(source, make_experience):
    """A simulation through the services: B converts at 30%, A at 5%; after rounds of
    visitors and refreshes most new visitors get B."""
    experience = make_experience(allocation="bandit", variants=TWO, goal_event="Signed Up")
    rates = {"A": 0.05, "B": 0.30}
    rng = random.Random(7)
    shares_seen = []
    for _ in range(6):
        for _ in range(60):
            profile, _ = visitor()
            answer = decisions_take(placement_keys=["home_hero"], profile=profile, page={})[0]
            if rng.random() < rates[answer.variant]:
                now = timezone.now()
                Event.objects.create(
                    source=source,
                    message_id=f"signup-{profile.pk}",
                    type="track",
                    event="Signed Up",
                    timestamp=now,
                    received_at=now,
                    profile=profile,
                )
        experience_bandit_refresh(experience=experience)
        experience.refresh_from_db()
        shares_seen.append(experience.bandit_shares["B"])
    assert shares_seen[-1] > 0.85
    assert experience.bandit_probability_best["B"] > 0.95
    # The allocation steers new visitors: most of the next ones get B.
    next_ones = [
        decisions_take(placement_keys=["home_hero"], profile=visitor()[0], page={})[0].variant
        for _ in range(100)
    ]
    assert next_ones.count("B") > 75


def test_impressions_and_clicks_count_per_day_and_each_days_rate_carries_its_band(
    source, make_experience
):
    experience = make_experience()  # one variant, "A"; without a goal a click converts
    now = timezone.now()
    days_ago = [now - timezone.timedelta(days=n) for n in (2, 1, 0)]
    first, second = visitor()[0], visitor()[0]
    decisions = {
        profile: decisions_take(placement_keys=["home_hero"], profile=profile, page={}, now=at)
        for profile, at in ((first, days_ago[0]), (second, days_ago[1]))
    }
    sent = [
        (first, "Experience Viewed", days_ago[0]),
        (first, "Experience Viewed", days_ago[1]),
        (first, "Experience Clicked", days_ago[1]),
        (second, "Experience Viewed", days_ago[1]),
        (second, "Experience Viewed", days_ago[2]),
    ]
    for profile, name, at in sent:
        Event.objects.create(
            source=source,
            message_id=f"m-{next(_messages)}",
            type="track",
            event=name,
            properties={"decision_id": decisions[profile][0].decision_id},
            timestamp=at,
            received_at=at,
            profile=profile,
        )
    found = experience_results(experience=experience, now=now)
    assert len(found["days"]) == 3
    series = found["arms"][0]["series"]
    assert series["impressions"] == [1, 2, 1]
    assert series["clicks"] == [0, 1, 0]
    assert series["assigned"] == [1, 2, 2]
    assert series["converted"] == [1, 1, 1]
    assert series["rate"] == [1.0, 0.5, 0.5]
    for low, rate, high in zip(series["low"], series["rate"], series["high"], strict=True):
        assert 0 <= low <= rate <= high <= 1
    # Each day's band is that of the counts so far (the always-valid one campaigns use).
    for day, (low, high) in enumerate(zip(series["low"], series["high"], strict=True)):
        assert (low, high) == rate_interval(series["converted"][day], series["assigned"][day])
