"""The demo looks like a real shop: events received over 30 days, example segments, trained
models, an identity rescan, privacy requests in different states; the README's numbers are
what it creates."""

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from consent.models import PrivacyRequest, RequestStatus
from identity.models import RescanJob
from profiles.demo import RECEIVED_DAYS, DemoStats, demo_messages
from profiles.models import Event
from segments.models import ModelRun, Segment

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_readme_states_the_numbers_of_the_default_demo():
    stats = DemoStats()
    for _ in demo_messages(
        profiles=300, seed=42, now=datetime(2026, 1, 1, tzinfo=UTC), stats=stats
    ):
        pass
    said = re.search(
        r"300 people, (\d+) of\s+whom registered twice, with ([\d,]+) events \(([\d,]+) pages, "
        r"([\d,]+) tracks, ([\d,]+) identifies\) and (\d+)\s+orders",
        README,
    )
    assert said is not None, "the README's demo paragraph changed shape"
    numbers = [int(group.replace(",", "")) for group in said.groups()]
    assert numbers == [
        stats.duplicates,
        stats.messages,
        stats.by_type["page"],
        stats.by_type["track"],
        stats.by_type["identify"],
        stats.orders,
    ]
    assert stats.people == 300
    assert "3 example segments" in README and "3 privacy requests" in README


@pytest.mark.django_db
def test_seed_demo_makes_a_shop_that_looks_alive_and_a_second_run_adds_nothing(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", profiles=40, seed=5, stdout=out)
    now = timezone.now()
    received = Event.objects.values_list("received_at", flat=True)
    assert min(received) >= now - timedelta(days=RECEIVED_DAYS, minutes=5)
    assert max(received) <= now
    days = {moment.date() for moment in received}
    assert len(days) >= RECEIVED_DAYS // 2  # spread out, not one spike
    assert sorted(Segment.objects.values_list("name", flat=True)) == [
        "Big spenders",
        "Cart abandoners",
        "Recent buyers",
    ]
    assert set(ModelRun.objects.values_list("kind", flat=True)) == set(ModelRun.Kind.values)
    assert RescanJob.objects.filter(status=RescanJob.Status.DONE).count() == 1
    states = sorted(PrivacyRequest.objects.values_list("regulation_type", "status"))
    assert states == [
        ("ACCESS", RequestStatus.FINISHED),
        ("DELETE_ONLY", RequestStatus.NOT_VERIFIED),
        ("SUPPRESS_ONLY", RequestStatus.INITIALIZED),
    ]
    stored = Event.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", profiles=40, seed=5, stdout=io.StringIO())
    assert Event.objects.count() == stored
    assert Segment.objects.count() == 3 and PrivacyRequest.objects.count() == 3
