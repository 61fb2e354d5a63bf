"""The demo shop: deterministic, Segment-shaped, with the signal later stages need."""

import io
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from profiles.demo import (
    CONSENT_CATEGORIES,
    HISTORY_DAYS,
    DemoStats,
    demo_catalog,
    demo_duplicate,
    demo_messages,
    demo_person,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SHOP_EVENTS = {
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Order Completed",
}


@pytest.fixture(scope="module")
def shop():
    stats = DemoStats()
    messages = list(demo_messages(profiles=200, seed=7, now=NOW, stats=stats))
    return messages, stats


def test_the_same_seed_gives_the_same_messages_and_another_seed_others():
    first = list(demo_messages(profiles=15, seed=3, now=NOW))
    again = list(demo_messages(profiles=15, seed=3, now=NOW))
    other = list(demo_messages(profiles=15, seed=4, now=NOW))
    assert json.dumps(first) == json.dumps(again)
    assert {m["messageId"] for m in first}.isdisjoint({m["messageId"] for m in other})


def test_a_person_is_the_same_whatever_the_number_of_people():
    few = list(demo_messages(profiles=5, seed=3, now=NOW))
    many = list(demo_messages(profiles=50, seed=3, now=NOW))
    humans = [m for m in few if "Googlebot" not in json.dumps(m) and "bot/" not in json.dumps(m)]
    assert humans and all(m in many for m in humans)


def test_the_catalog_has_200_described_products_in_10_categories():
    catalog = demo_catalog(seed=1)
    assert len(catalog) == 200
    assert len({p.product_id for p in catalog}) == 200
    assert Counter(p.category for p in catalog).most_common()[-1][1] == 20
    assert len({p.category for p in catalog}) == 10
    assert all(len(p.description.split()) >= 15 and p.price > 0 for p in catalog)


def test_messages_are_segment_spec_with_unique_ids_and_times_in_the_past(shop):
    messages, stats = shop
    assert len(messages) == stats.messages > 200 * 10
    assert len({m["messageId"] for m in messages}) == len(messages)
    assert {m["type"] for m in messages} == {"page", "track", "identify"}
    assert {m["event"] for m in messages if m["type"] == "track"} == SHOP_EVENTS
    for message in messages:
        assert message.get("userId") or message.get("anonymousId")
        moment = datetime.fromisoformat(message["timestamp"])
        assert NOW - timedelta(days=HISTORY_DAYS + 1) < moment <= NOW
        assert len(json.dumps(message)) < 32 * 1024


def test_people_browse_anonymously_before_identify_joins_them(shop):
    messages, _ = shop
    first_seen_anonymously = {}
    joined = 0
    for message in messages:
        anonymous_id = message.get("anonymousId")
        if "userId" not in message:
            first_seen_anonymously.setdefault(anonymous_id, message["timestamp"])
        elif message["type"] == "identify" and anonymous_id in first_seen_anonymously:
            assert first_seen_anonymously[anonymous_id] < message["timestamp"]
            joined += 1
    assert joined >= 100


def test_identify_carries_demographic_traits(shop):
    messages, _ = shop
    traits = [
        m["traits"] for m in messages if m["type"] == "identify" and "email" in m.get("traits", {})
    ]
    assert len(traits) >= 120
    for one in traits:
        assert {"firstName", "lastName", "email", "birthday", "gender", "address"} <= set(one)
        assert set(one["address"]) == {"street", "city", "postalCode", "country"}
    assert sum("phone" in one for one in traits) > len(traits) / 2


def test_views_and_orders_follow_each_persons_latent_preferences():
    seed = 11
    catalog = {p.product_id: p for p in demo_catalog(seed=seed)}
    favourite_by_user = {}
    categories = sorted(
        {p.category for p in catalog.values()},
        key=list(dict.fromkeys(p.category for p in catalog.values())).index,
    )
    for index in range(150):
        person = demo_person(seed=seed, index=index)
        favourite_by_user[person.user_id] = categories[
            max(range(len(categories)), key=person.preferences.__getitem__)
        ]
    in_favourite = Counter()
    for message in demo_messages(profiles=150, seed=seed, now=NOW):
        favourite = favourite_by_user.get(message.get("userId"))
        if favourite and message.get("event") == "Product Viewed":
            in_favourite[message["properties"]["category"] == favourite] += 1
    share = in_favourite[True] / sum(in_favourite.values())
    # Uniform browsing would put 10% of views in any one category.
    assert share > 0.4


def test_about_one_in_twenty_people_registers_twice_with_no_shared_identifier(shop):
    _, stats = shop
    assert 3 <= stats.duplicates <= 25
    for index in range(40):
        person = demo_person(seed=7, index=index)
        twin = demo_duplicate(person=person, seed=7)
        assert twin.user_id != person.user_id and twin.email != person.email
        assert twin.phone is None
        assert {d[0] for d in twin.devices}.isdisjoint({d[0] for d in person.devices})
        assert twin.birthday == person.birthday
        assert twin.address["city"] == person.address["city"]


def test_consent_choices_are_in_segments_shape_and_vary(shop):
    messages, _ = shop
    seen = defaultdict(set)
    for message in messages:
        preferences = message.get("context", {}).get("consent", {}).get("categoryPreferences")
        if preferences is None:
            continue
        assert set(preferences) == set(CONSENT_CATEGORIES)
        for category, granted in preferences.items():
            seen[category].add(granted)
    assert seen["Advertising"] == {True, False}
    assert seen["Analytics"] == {True, False}


def test_orders_carry_revenue_and_their_products(shop):
    messages, stats = shop
    orders = [m for m in messages if m.get("event") == "Order Completed"]
    assert len(orders) == stats.orders > 50
    for order in orders:
        properties = order["properties"]
        assert order["userId"]
        lines = sum(p["price"] * p["quantity"] for p in properties["products"])
        assert properties["revenue"] == pytest.approx(lines, abs=0.01)
        assert properties["order_id"] and properties["currency"] == "USD"


def test_seed_demo_builds_profiles_through_ingestion_and_a_second_run_adds_nothing(
    db, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    from identity.models import Identity
    from profiles.models import Event, Profile

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", profiles=25, seed=4, events_only=True, stdout=out)
    assert "Seeded 25 people" in out.getvalue()
    stored = Event.objects.count()
    expected = DemoStats()
    for _ in demo_messages(profiles=25, seed=4, now=NOW, stats=expected):
        pass
    assert stored == expected.messages
    assert not Event.objects.filter(processed_at__isnull=True).exists()
    assert Profile.objects.filter(merged_into__isnull=True).count() >= 20
    joined = Identity.objects.filter(kind="user_id").values("profile")
    assert Identity.objects.filter(kind="anonymous_id", profile__in=joined).exists()
    buyers = Profile.objects.filter(order_count__gt=0, revenue__gt=0)
    assert buyers.exists()
    assert all(p.traits.get("email") for p in buyers)
    # People registered twice stay two profiles (no shared exact identifier) that agree on
    # birthday and address: work for fuzzy identity resolution.
    assert expected.duplicates == 2
    by_person = Counter(
        (p.traits["birthday"], p.traits["address"]["postalCode"])
        for p in Profile.objects.filter(merged_into__isnull=True)
        if "birthday" in p.traits
    )
    assert sum(1 for count in by_person.values() if count == 2) == expected.duplicates

    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", profiles=25, seed=4, events_only=True, stdout=io.StringIO())
    assert Event.objects.count() == stored


def test_seed_demo_refuses_a_count_below_one(db):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--profiles must be at least 1"):
        call_command("seed_demo", profiles=0)
