"""An experience's results in a real browser: the charts (each arm's rate with its interval,
the rate over time, impressions and clicks per day) are drawn from the figures the table
shows; and every experiences page fits a desktop and a phone screen."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.utils import timezone

from access.services import source_create
from experiences.models import Decision
from experiences.services import decisions_take, experience_create, placement_create
from identity.models import Identity
from profiles.models import Event, Profile
from tests.conftest import WRITE_KEY

pytestmark = pytest.mark.e2e
DAYS = 6
_messages = itertools.count(1)


@pytest.fixture
def experience(transactional_db):
    """A split test of two banners with a holdout, decided over DAYS days: people view the
    banner on the day they are decided and the next, and B gets clicked more than A."""
    source = source_create(name="Shop", write_key=WRITE_KEY).record
    placement = placement_create(
        fields={
            "key": "home_hero",
            "name": "Home hero",
            "content_schema": {"type": "object", "properties": {"title": {"type": "string"}}},
            "default_content": {"title": "Welcome"},
        },
        actor=None,
    )
    experience = experience_create(
        fields={
            "placement": placement,
            "name": "Spring banner",
            "status": "active",
            "allocation": "split",
            "holdout_percent": 20,
            "variants": [
                {"name": "A", "weight": 1, "content": {"title": "Spring sale"}},
                {"name": "B", "weight": 1, "content": {"title": "Spring sale: 20% off"}},
            ],
        },
        actor=None,
    )
    start = timezone.now() - dt.timedelta(days=DAYS - 1)
    for n in range(90):
        profile = Profile.objects.create()
        Identity.objects.create(kind="anonymous_id", value=f"anon-{n}", profile=profile)
        at = start + dt.timedelta(days=n % DAYS, minutes=n)
        answer = decisions_take(placement_keys=["home_hero"], profile=profile, page={}, now=at)[0]
        views = [at + dt.timedelta(minutes=1), at + dt.timedelta(days=1)]
        clicks = views[:1] if n % (2 if answer.variant == "B" else 5) == 0 else []
        for name, moments in (("Experience Viewed", views), ("Experience Clicked", clicks)):
            for moment in moments:
                moment = min(moment, timezone.now())
                Event.objects.create(
                    source=source,
                    message_id=f"m-{next(_messages)}",
                    type="track",
                    event=name,
                    properties={"decision_id": answer.decision_id, "placement": "home_hero"},
                    timestamp=moment,
                    received_at=moment,
                    profile=profile,
                )
    return experience


def figures(page, arm: str) -> dict[str, int]:
    row = page.locator(f"tr[data-arm={arm}]")
    return {
        name: int(row.locator(f"[data-figure={name}]").inner_text().replace(",", ""))
        for name in ("impressions", "clicks")
    }


def test_the_results_page_charts_each_arm_from_the_tables_figures(
    page, live_server, experience, marketer, login, shot
):
    login(marketer)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}/experiences/{experience.pk}/results/")
    page.wait_for_function(
        "Array.from(document.querySelectorAll('canvas[data-results-chart]'))"
        ".every(c => window.Chart && Chart.getChart(c))"
    )
    drawn = page.evaluate(
        """() => Object.fromEntries(Array.from(
            document.querySelectorAll('canvas[data-results-chart]'),
            (c) => [c.dataset.chartData, {
                labels: Chart.getChart(c).data.labels,
                datasets: Chart.getChart(c).data.datasets.map(
                    (d) => ({label: d.label, data: d.data})),
            }]))"""
    )
    assert set(drawn) == {"intervals-data", "rates-data", "impressions-data", "clicks-data"}
    arms = ["A", "B", "holdout"]
    assert drawn["intervals-data"]["labels"] == arms
    # Each arm's interval holds its rate.
    bars, marks = drawn["intervals-data"]["datasets"]
    for (low, high), rate in zip(bars["data"], marks["data"], strict=True):
        assert low <= rate <= high
    assert len(drawn["impressions-data"]["labels"]) == DAYS
    for chart, figure in (("impressions-data", "impressions"), ("clicks-data", "clicks")):
        per_arm = {d["label"]: sum(d["data"]) for d in drawn[chart]["datasets"]}
        assert per_arm == {arm: figures(page, arm)[figure] for arm in arms}
    assert sum(figures(page, "B").values()) > 0 and Decision.objects.count() == 90
    shot("experiences-results-1440")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector("canvas[data-results-chart]")
    shot("experiences-results-390")


def test_every_experiences_page_fits_a_desktop_and_a_phone_screen(
    page, live_server, experience, marketer, login, shot
):
    login(marketer)
    profile = Identity.objects.get(value="anon-1").profile_id
    pages = {
        "list": "/experiences/",
        "placements": "/experiences/placements/",
        "placement-edit": f"/experiences/placements/{experience.placement_id}/",
        "edit": f"/experiences/{experience.pk}/",
        "new": "/experiences/new/",
        "preview": f"/experiences/{experience.pk}/preview/?profile={profile}",
        "results": f"/experiences/{experience.pk}/results/",
    }
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        for name, path in pages.items():
            response = page.goto(live_server.url + path)
            assert response is not None and response.status == 200, (name, width)
            page.wait_for_load_state("load")
            # Nothing wider than the screen: wide tables scroll inside their own box.
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (name, width, overflow)
            shot(f"experiences-{name}-{width}")


def test_the_results_charts_draw_under_the_content_security_policy(
    browser, live_server, experience, marketer, client
):
    """No inline script: the charts' data arrives as JSON (json_script) and the vendored
    files draw it, with the site's policy kept (the other tests here bypass it)."""
    client.force_login(marketer)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    context.add_init_script(
        """window.__csp = [];
        document.addEventListener("securitypolicyviolation",
            (e) => window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline")));"""
    )
    page = context.new_page()
    try:
        response = page.goto(f"{live_server.url}/experiences/{experience.pk}/results/")
        assert response is not None and response.status == 200
        assert "script-src" in response.headers.get("content-security-policy", "")
        page.wait_for_load_state("load")
        drawn = page.evaluate(
            "() => Array.from(document.querySelectorAll('canvas[data-results-chart]'),"
            " (c) => Boolean(window.Chart && Chart.getChart(c)))"
        )
        assert drawn == [True] * 4
        assert page.evaluate("() => window.__csp") == []
    finally:
        context.close()
