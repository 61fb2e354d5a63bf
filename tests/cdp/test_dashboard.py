"""The dashboard: figures, the per-minute series, the htmx refresh and bad input."""

import json
import re
from datetime import timedelta

import pytest
from django.urls import Resolver404, resolve
from django.utils import timezone

from access.services import source_create
from cdp import metrics
from profiles.models import Event, Profile, QuarantinedMessage

pytestmark = pytest.mark.django_db


def add_events(source, moments, processed=True):
    Event.objects.bulk_create(
        Event(
            source=source,
            message_id=f"m-{source.pk}-{n}-{moment.timestamp()}",
            type="track",
            event="Product Viewed",
            timestamp=moment,
            received_at=moment,
            payload={},
            processed_at=moment if processed else None,
        )
        for n, moment in enumerate(moments)
    )


def test_events_per_minute_counts_each_minute_and_fills_quiet_minutes_with_zero(source):
    until = timezone.now().replace(second=0, microsecond=0)
    since = until - timedelta(minutes=5)
    add_events(
        source,
        [
            since + timedelta(seconds=5),
            since + timedelta(seconds=50),
            since + timedelta(minutes=3, seconds=1),
            since - timedelta(seconds=1),  # before the window
            until + timedelta(seconds=1),  # after it
        ],
    )
    series = metrics.events_per_minute(since=since, until=until)
    assert [n for _, n in series] == [2, 0, 0, 1, 0]
    assert series[0][0] == since


def test_events_by_source_lists_every_source_busiest_first(source):
    crm = source_create(name="CRM").record
    quiet = source_create(name="Quiet app").record
    now = timezone.now()
    add_events(source, [now - timedelta(minutes=n) for n in range(1, 3)])
    add_events(crm, [now - timedelta(minutes=n) for n in range(1, 5)])
    add_events(crm, [now - timedelta(hours=30)])  # outside the window
    rows = metrics.events_by_source(since=now - timedelta(hours=3))
    assert [(row["name"], row["events"]) for row in rows] == [
        ("CRM", 4),
        ("Website", 2),
        (quiet.name, 0),
    ]


def test_the_dashboard_shows_the_figures(staff_client, marketer, source):
    Profile.objects.create()
    Profile.objects.create(merged_into=Profile.objects.create())  # a merged one does not count
    now = timezone.now()
    add_events(source, [now - timedelta(minutes=n) for n in range(2, 9)])
    add_events(source, [now - timedelta(minutes=3)] * 1, processed=False)
    QuarantinedMessage.objects.create(
        source=source, received_at=now, reason="unknown event", message={}
    )
    response = staff_client(marketer).get("/")
    body = response.content.decode()
    assert response.status_code == 200
    figures = response.context
    assert figures["counts"]["profiles"].value == 2
    assert figures["counts"]["events_pending"].value == 1
    assert figures["counts"]["quarantined"].value == 1
    assert figures["events_in_window"] == 8
    chart = json.loads(
        re.search(
            r'<script id="events-per-minute-data" type="application/json">(.*?)</script>', body
        ).group(1)
    )
    assert len(chart["labels"]) == 180
    assert sum(chart["datasets"][0]["data"]) == 8
    assert "Website" in body


def test_the_htmx_refresh_gets_each_region_swapped_out_of_band(staff_client, marketer, source):
    response = staff_client(marketer).get("/", {"hours": "1"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert "<html" not in body
    for region in [
        "dashboard-updated",
        "dashboard-cards",
        "events-per-minute-wrap",
        "dashboard-sources",
    ]:
        assert re.search(rf'id="{region}"\s+hx-swap-oob="true"', body), region
    assert len(json.loads(re.search(r'application/json">(.*?)<', body).group(1))["labels"]) == 60


@pytest.mark.parametrize("hours", ["2", "abc", "-1", ""])
def test_a_bad_window_gets_400_saying_which_values_are_allowed(staff_client, marketer, hours):
    response = staff_client(marketer).get("/", {"hours": hours})
    assert response.status_code == 400
    assert "hours: must be one of 1, 3, 6, 24" in response.content.decode()


def test_the_quarantine_figure_links_to_the_quarantine_page_only_once_it_exists(
    staff_client, marketer, settings
):
    client = staff_client(marketer)
    try:
        resolve("/data/quarantine/")
        routed = True
    except Resolver404:
        routed = False
    assert ('href="/data/quarantine/"' in client.get("/").content.decode()) is routed
    settings.ROOT_URLCONF = "tests.cdp.urls_with_quarantine"
    assert 'href="/data/quarantine/"' in client.get("/").content.decode()


def test_large_tables_are_counted_from_the_planner_estimate(source, monkeypatch):
    monkeypatch.setattr(metrics, "EXACT_COUNT_LIMIT", 3)
    add_events(source, [timezone.now() - timedelta(minutes=n) for n in range(10)])
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_event")
    counts = metrics._table_counts()
    assert counts["events"].approximate
    assert counts["events"].value == 10
    assert not counts["quarantined"].approximate


def test_settled_minutes_are_counted_once_and_recent_minutes_every_time(
    source, django_assert_num_queries
):
    until = timezone.now().replace(second=0, microsecond=0)
    since = until - timedelta(minutes=30)
    add_events(source, [since + timedelta(minutes=1), until - timedelta(seconds=30)])
    assert sum(n for _, n in metrics.events_per_minute(since=since, until=until)) == 2

    # A late row in a settled minute is not re-read; one in the last minutes is.
    add_events(source, [since + timedelta(minutes=2)], processed=False)
    add_events(source, [until - timedelta(seconds=10)], processed=False)
    with django_assert_num_queries(1):
        series = metrics.events_per_minute(since=since, until=until)
    assert [n for _, n in series][1:3] == [1, 0]
    assert series[-1][1] == 2
