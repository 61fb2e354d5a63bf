"""The total lift of marketing against the workspace holdout: the report's groups and counts
equal those made independently from the delivery and event rows, its statistics are
campaigns.stats', "no holdout configured" at 0%, the dashboard shows it, the API serves it
with the results' scope rules and refuses bad input with a 400."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from campaigns import stats
from campaigns.models import Delivery
from campaigns.results import holdout_report
from campaigns.services import experiments
from profiles.models import Event
from tests.campaigns.conftest import ORDER, person, track
from tests.campaigns.test_experiments import enter, experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def reached(source, email_channel, make_campaign, settings, django_capture_on_commit_callbacks):
    """60 people reached by a marketing campaign, 30% of them held out; some order after
    (every third person, with revenue), some ordered only before they were reached, and
    some did another event (which does not count)."""
    settings.CAMPAIGN_HOLDOUT_PERCENT = 30
    make_campaign(experiment(email_channel))
    start = timezone.now() - dt.timedelta(hours=2)
    people = [person(email_address=f"lift{i}@example.com") for i in range(60)]
    for i, profile in enumerate(people):
        if i % 7 == 0:  # bought before any message: not a conversion of the report
            track(source, profile, ORDER, at=start + dt.timedelta(minutes=1), properties={})
        enter(source, profile, django_capture_on_commit_callbacks)
    after = timezone.now() + dt.timedelta(seconds=1)
    for i, profile in enumerate(people):
        if i % 3 == 0 or (i % 5 == 0 and experiments.in_holdout(profile_id=profile.pk)):
            revenue = {"revenue": 10.0 + i} if i % 2 == 0 else {}
            track(source, profile, ORDER, at=after, properties=revenue)
        elif i % 4 == 0:
            track(source, profile, "Checkout Started", at=after)
    return start, people


def _counted_from_rows(start, now):
    """The groups, conversions and revenue, made from the rows without the report's code."""
    groups: dict[str, dict[int, dt.datetime]] = {"holdout": {}, "marketed": {}}
    for delivery in Delivery.objects.all():
        at = delivery.sent_at or delivery.would_send_at
        if at is None or not (start <= at < now):
            continue
        key = "holdout" if delivery.skip_reason == "holdout" else "marketed"
        first = groups[key].get(delivery.profile_id)
        groups[key][delivery.profile_id] = min(at, first) if first else at
    counted = {}
    for key, people in groups.items():
        converted, revenue = set(), 0.0
        for event in Event.objects.filter(event=ORDER, profile_id__in=people):
            if people[event.profile_id] <= event.timestamp < now:
                converted.add(event.profile_id)
                revenue += float(event.properties.get("revenue", 0))
        counted[key] = (len(people), len(converted), round(revenue, 2))
    return counted


def test_the_report_counts_each_group_as_the_rows_do(reached):
    start, people = reached
    now = timezone.now() + dt.timedelta(minutes=1)
    report = holdout_report(since=start, now=now)
    counted = _counted_from_rows(start, now)
    held = sum(experiments.in_holdout(profile_id=p.pk) for p in people)
    assert counted["holdout"][0] == held and counted["marketed"][0] == 60 - held
    for key in ("holdout", "marketed"):
        group = report[key]
        assert (group["people"], group["converted"], group["revenue"]) == counted[key]
        assert group["conversion_rate"] == counted[key][1] / counted[key][0]
        assert group["ci95"] == list(stats.rate_interval(counted[key][1], counted[key][0]))
        # Rounded to 4 places, as the API gives it.
        assert group["revenue_per_person"] == pytest.approx(
            counted[key][2] / counted[key][0], abs=5e-5
        )
    (nh, xh, _), (nm, xm, _) = counted["holdout"], counted["marketed"]
    assert report["difference"] == pytest.approx(xm / nm - xh / nh)
    assert report["difference_ci95"] == list(stats.difference_interval(xh, nh, xm, nm))
    assert report["lift"] == pytest.approx((xm / nm - xh / nh) / (xh / nh))
    assert report["p_value"] == pytest.approx(
        float(stats.always_valid_p([xh], [nh], [xm], [nm])[0])
    )
    assert report["event"] == ORDER and "holdout" in report["decision"]
    assert f"{xm / nm:.1%} against {xh / nh:.1%}" in report["decision"]


def test_another_event_can_be_the_conversion(reached):
    start, _ = reached
    # The events are a second ahead of the fixture's clock: the window must reach them.
    later = timezone.now() + dt.timedelta(minutes=1)
    report = holdout_report(since=start, now=later, event="Checkout Started")
    assert report["event"] == "Checkout Started"
    assert report["holdout"]["converted"] + report["marketed"]["converted"] == (
        Event.objects.filter(event="Checkout Started").values("profile_id").distinct().count()
    )


def test_without_a_holdout_the_report_says_so(reached, settings):
    settings.CAMPAIGN_HOLDOUT_PERCENT = 0
    start, _ = reached
    report = holdout_report(since=start)
    assert report["configured"] is False and report["holdout"] is None
    assert report["decision"].startswith("No holdout configured")


def test_the_difference_interval_excludes_zero_exactly_when_the_p_value_is_below_alpha():
    for xa, na, xb, nb in [(50, 1000, 80, 1000), (50, 1000, 55, 1000), (5, 40, 20, 40)]:
        low, high = stats.difference_interval(xa, na, xb, nb)
        p = float(stats.always_valid_p([xa], [na], [xb], [nb])[0])
        assert (low > 0 or high < 0) == (p < stats.ALPHA)
    assert stats.difference_interval(1, 0, 1, 10) is None


def test_the_dashboard_shows_the_report_and_refuses_a_bad_event_name_in_words(
    reached, staff_client, compliance
):
    page = staff_client(compliance).get("/campaigns/dashboard/?days=7").content.decode()
    assert "Total lift against the holdout" in page and "Holdout" in page
    assert "points (95% always-valid interval" in page
    bad = staff_client(compliance).get("/campaigns/dashboard/?days=7&event=" + "x" * 300)
    assert bad.status_code == 200
    assert "An event name has at most 255 characters." in bad.content.decode()


def test_the_api_serves_the_report_with_the_results_scope_rules(
    reached, compliance, marketer, admin_user, no_role_user, api_client_with_scopes
):
    url = "/api/v1/campaigns/holdout/"
    for user in (compliance, marketer, admin_user):
        client = APIClient()
        client.force_authenticate(user)
        response = client.get(url, {"days": 7})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["configured"] is True and body["holdout"]["people"] > 0
        assert body["marketed"]["people"] + body["holdout"]["people"] == 60
    nobody = APIClient()
    nobody.force_authenticate(no_role_user)
    assert nobody.get(url).status_code == 403
    assert APIClient().get(url).status_code in (401, 403)
    assert api_client_with_scopes("campaigns:read").get(url).status_code == 200
    assert api_client_with_scopes("campaigns:write").get(url).status_code == 403
    reader = api_client_with_scopes("campaigns:read")
    for params, field in (
        ({"days": 0}, "days"),
        ({"days": "x"}, "days"),
        ({"event": "a\x00"}, "event"),
    ):
        response = reader.get(url, params)
        assert response.status_code == 400 and field in response.json(), response.content
