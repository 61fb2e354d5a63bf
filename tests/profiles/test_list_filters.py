"""The profiles list: filters (segment, has email, source, last seen), sorting, a total count,
and profiles without events (bot visitors) hidden unless asked for."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from access.models import Source
from identity.models import Identity
from profiles.models import Event, Profile
from segments import services as segment_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(source):
    now = timezone.now()
    other = Source.objects.create(name="App")
    anna = Profile.objects.create(
        traits={"name": "Anna"}, event_count=3, revenue=Decimal("50"), last_seen=now
    )
    Identity.objects.create(kind="email", value="anna@example.org", profile=anna)
    boris = Profile.objects.create(
        traits={"name": "Boris"},
        event_count=9,
        revenue=Decimal("900"),
        last_seen=now - dt.timedelta(days=40),
    )
    bot = Profile.objects.create(traits={}, event_count=0)
    for profile, src in [(anna, source), (boris, other)]:
        Event.objects.create(
            source=src,
            message_id=f"m-{profile.pk}",
            type="track",
            event="Product Viewed",
            timestamp=now,
            received_at=now,
            profile=profile,
        )
    return {"anna": anna, "boris": boris, "bot": bot, "app": other}


def _listed(client, people, query=""):
    """The people listed (by the profile number the list shows), in page order."""
    page = client.get(f"/profiles/?{query}").content.decode()
    shown = [
        (page.index(f">#{p.pk}<"), name)
        for name, p in people.items()
        if isinstance(p, Profile) and f">#{p.pk}<" in page
    ]
    return [name for _, name in sorted(shown)], page


def test_bot_visitors_without_events_are_hidden_unless_asked_for(staff_client, marketer, people):
    client = staff_client(marketer)
    listed, page = _listed(client, people)
    assert listed == ["boris", "anna"] and "<strong>2</strong> profiles" in page
    listed, page = _listed(client, people, "include_empty=on")
    assert listed == ["bot", "boris", "anna"] and "<strong>3</strong> profiles" in page


def test_filters_by_email_source_last_seen_and_segment(staff_client, marketer, people):
    client = staff_client(marketer)
    assert _listed(client, people, "has_email=on")[0] == ["anna"]
    assert _listed(client, people, f"source={people['app'].pk}")[0] == ["boris"]
    assert _listed(client, people, "seen=30")[0] == ["anna"]
    segment = segment_services.segment_create(
        name="Big spenders", definition={"computed": "monetary", "op": "gt", "value": 100}
    )
    segment_services.segment_refresh(segment=segment)
    listed, page = _listed(client, people, f"segment={segment.pk}")
    assert listed == ["boris"] and "<strong>1</strong> profile ·" in page


def test_sorts_by_revenue_with_numbered_pages_that_keep_the_filters(staff_client, marketer, people):
    client = staff_client(marketer)
    Profile.objects.filter(pk=people["anna"].pk).update(revenue=Decimal("5000"))
    listed, page = _listed(client, people, "sort=revenue&seen=90")
    assert listed == ["anna", "boris"]
    assert 'aria-current="page">1<' in page
    assert _listed(client, people, "sort=newest")[0] == ["boris", "anna"]


def test_a_bad_filter_is_a_400_saying_which(staff_client, marketer, people):
    response = staff_client(marketer).get("/profiles/?sort=nope&seen=5")
    assert response.status_code == 400
    page = response.content.decode()
    assert "sort" in page and "seen" in page
