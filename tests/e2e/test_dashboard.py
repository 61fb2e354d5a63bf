"""The dashboard in a real browser: the chart draws, and the htmx refresh updates figures and
chart in place."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from profiles.models import Event

pytestmark = pytest.mark.e2e

CHART_TOTAL = (
    "Chart.getChart(document.getElementById('events-per-minute'))"
    ".data.datasets[0].data.reduce((a, b) => a + b, 0)"
)
EVENTS_FIGURE = "document.querySelector('#dashboard-cards .card:nth-child(2) .figure')"


def test_the_dashboard_refreshes_figures_and_chart_without_reloading(
    page, live_server, compliance, login, shot, source
):
    login(compliance)
    page.wait_for_function(f"typeof Chart !== 'undefined' && {CHART_TOTAL} === 0")
    assert page.locator("#dashboard-cards .card >> nth=1 >> .figure").inner_text() == "0"
    page.evaluate("window.notReloaded = true")

    moment = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    Event.objects.bulk_create(
        Event(
            source=source,
            message_id=f"dash-{n}",
            type="track",
            event="Product Viewed",
            timestamp=moment + timedelta(seconds=n),
            received_at=moment + timedelta(seconds=n),
            payload={},
        )
        for n in range(7)
    )
    cache.clear()  # the figures are shared between browsers for a few seconds
    page.evaluate("htmx.trigger('#dashboard-poll', 'refresh')")

    page.wait_for_function(f"{EVENTS_FIGURE}.textContent.trim() === '7'")
    page.wait_for_function(f"{CHART_TOTAL} === 7")
    assert page.evaluate("window.notReloaded") is True
    assert "Website" in page.locator("#dashboard-sources").inner_text()
    shot("dashboard-refreshed")
