"""Every operator and condition kind, on a fixed cast, through both the compiled query and the
reference evaluator (they must agree with the expected members and so with each other)."""

import datetime as dt

import pytest

from profiles.selectors import profile_computed_features
from segments import conditions, services
from segments.compiler import base_profiles, compile_definition
from segments.models import ModelRun, ProfileScore, Segment
from segments.selectors import definition_resolver, profile_facts
from tests.segments.conftest import NOW

pytestmark = pytest.mark.django_db

H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def day(delta: dt.timedelta) -> str:
    return (NOW - delta).date().isoformat()


@pytest.fixture
def cast(profile_maker):
    de = profile_maker(
        traits={
            "country": "DE",
            "age": 34,
            "vip": True,
            "name": "Anna Schmidt",
            "signup": day(5 * D),
            "address": {"city": "Berlin"},
            "score": "12",
        },
        revenue=250,
        order_count=3,
        last_order_at=NOW - 5 * D,
        last_seen=NOW - D,
        first_seen=NOW - 200 * D,
        events=[
            ("Product Viewed", NOW - D, {"category": "Shoes", "price": 80}),
            ("Product Viewed", NOW - 2 * D, {"category": "Shoes", "price": 60}),
            ("Product Viewed", NOW - 10 * D, {"category": "Shoes"}),
            ("Product Added", NOW - 3 * H, {}),
            ("Order Completed", NOW - 150 * dt.timedelta(minutes=1), {}),
        ],
        identifiers=["email"],
    )
    fr = profile_maker(
        traits={
            "country": "FR",
            "age": "34",
            "vip": False,
            "name": "Bob",
            "signup": "2025-01-01T10:00:00Z",
            "address": {"city": "Paris"},
        },
        revenue=50,
        order_count=1,
        last_order_at=NOW - 40 * D,
        last_seen=NOW - 40 * D,
        events=[
            ("Product Viewed", NOW - D, {"category": "Hats"}),
            ("Product Added", NOW - 5 * H, {}),
        ],
        identifiers=["phone"],
    )
    empty = profile_maker()
    nullish = profile_maker(
        traits={"country": None, "age": 1.5, "tags": ["vip"]},
        last_seen=NOW - 100 * D,
        events=[
            ("Product Added", NOW - 30 * dt.timedelta(minutes=1), {}),
            ("Order Completed", NOW - 40 * D, {}),
        ],
    )
    run = ModelRun.objects.create(kind="purchase_30d", status="done")
    ProfileScore.objects.create(profile=de, kind="purchase_30d", value=0.8, run=run)
    ProfileScore.objects.create(profile=fr, kind="purchase_30d", value=0.3, run=run)
    ProfileScore.objects.create(profile=de, kind="cluster", value=1, run=run)
    ProfileScore.objects.create(profile=fr, kind="cluster", value=2, run=run)
    saved = Segment.objects.create(
        name="Germans", definition={"trait": "country", "op": "eq", "value": "DE"}
    )
    return {"de": de, "fr": fr, "empty": empty, "nullish": nullish, "saved": saved}


ALL = {"de", "fr", "empty", "nullish"}

CASES = [
    ({"trait": "country", "op": "eq", "value": "DE"}, {"de"}),
    ({"trait": "country", "op": "neq", "value": "DE"}, {"fr", "empty", "nullish"}),
    ({"trait": "age", "op": "eq", "value": 34}, {"de"}),
    ({"trait": "age", "op": "eq", "value": "34"}, {"fr"}),
    ({"trait": "vip", "op": "eq", "value": True}, {"de"}),
    ({"trait": "vip", "op": "eq", "value": False}, {"fr"}),
    ({"trait": "name", "op": "contains", "value": "SCHM"}, {"de"}),
    ({"trait": "name", "op": "contains", "value": "%"}, set()),
    ({"trait": "name", "op": "starts_with", "value": "bo"}, {"fr"}),
    ({"trait": "country", "op": "in", "value": ["DE", "FR", 7, True]}, {"de", "fr"}),
    ({"trait": "country", "op": "not_in", "value": ["DE"]}, {"fr", "empty", "nullish"}),
    ({"trait": "country", "op": "exists"}, {"de", "fr"}),
    ({"trait": "country", "op": "not_exists"}, {"empty", "nullish"}),
    ({"trait": "age", "op": "gt", "value": 30}, {"de"}),
    ({"trait": "age", "op": "gte", "value": 1.5}, {"de", "nullish"}),
    ({"trait": "age", "op": "lt", "value": 2}, {"nullish"}),
    ({"trait": "age", "op": "lte", "value": 34}, {"de", "nullish"}),
    ({"trait": "age", "op": "between", "value": [1, 40]}, {"de", "nullish"}),
    ({"trait": "score", "op": "gt", "value": 5}, set()),
    ({"trait": "signup", "op": "before", "value": "2026-01-01"}, {"fr"}),
    ({"trait": "signup", "op": "after", "value": "2026-06-01"}, {"de"}),
    ({"trait": "signup", "op": "within_last", "value": {"days": 10}}, {"de"}),
    ({"trait": "signup", "op": "between", "value": ["2025-01-01", "2025-01-01"]}, {"fr"}),
    ({"trait": "address.city", "op": "eq", "value": "Berlin"}, {"de"}),
    ({"trait": "address.city", "op": "exists"}, {"de", "fr"}),
    ({"event": "Product Viewed"}, {"de", "fr"}),
    (
        {
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "eq", "value": "Shoes"}],
            "count": {"op": "gte", "value": 2},
            "within": {"days": 7},
        },
        {"de"},
    ),
    (
        {"event": "Product Viewed", "where": [{"property": "price", "op": "gt", "value": 70}]},
        {"de"},
    ),
    (
        {
            "event": "Product Viewed",
            "where": [{"property": "category", "op": "in", "value": ["Hats"]}],
        },
        {"fr"},
    ),
    (
        {"event": "Product Viewed", "where": [{"property": "price", "op": "not_exists"}]},
        {"de", "fr"},
    ),
    ({"event": "Product Viewed", "count": {"op": "eq", "value": 0}}, {"empty", "nullish"}),
    ({"event": "Product Viewed", "count": {"op": "lt", "value": 2}}, {"fr", "empty", "nullish"}),
    ({"event": "Product Viewed", "count": {"op": "lte", "value": 1}}, {"fr", "empty", "nullish"}),
    ({"event": "Product Viewed", "count": {"op": "neq", "value": 1}}, {"de", "empty", "nullish"}),
    ({"event": "Product Viewed", "count": {"op": "gt", "value": 2}}, {"de"}),
    ({"event": "Product Viewed", "count": {"op": "eq", "value": 3}}, {"de"}),
    ({"event": "Product Viewed", "within": {"hours": 30}}, {"de", "fr"}),
    ({"event": "Product Viewed", "within": {"between": [day(10 * D), day(10 * D)]}}, {"de"}),
    (
        {
            "event": "Product Added",
            "within": {"hours": 24},
            "not_followed_by": {"event": "Order Completed", "within": {"hours": 1}},
        },
        {"fr"},
    ),
    ({"event": "Order Completed", "first": {"op": "before", "value": day(20 * D)}}, {"nullish"}),
    (
        {"event": "Product Viewed", "last": {"op": "within_last", "value": {"hours": 36}}},
        {"de", "fr"},
    ),
    ({"event": "Product Viewed", "first": {"op": "after", "value": day(5 * D)}}, {"fr"}),
    (
        {
            "event": "Order Completed",
            "last": {"op": "between", "value": [day(41 * D), day(39 * D)]},
        },
        {"nullish"},
    ),
    ({"computed": "monetary", "op": "gt", "value": 100}, {"de"}),
    ({"computed": "frequency", "op": "gte", "value": 1}, {"de", "fr"}),
    ({"computed": "order_count", "op": "eq", "value": 0}, {"empty", "nullish"}),
    # A fractional bound on an integer column is not truncated.
    ({"computed": "order_count", "op": "eq", "value": 0.5}, set()),
    ({"computed": "order_count", "op": "neq", "value": 0.5}, {"de", "fr", "empty", "nullish"}),
    ({"computed": "order_count", "op": "gte", "value": 0.5}, {"de", "fr"}),
    ({"computed": "order_count", "op": "lt", "value": 0.5}, {"empty", "nullish"}),
    ({"computed": "order_count", "op": "between", "value": [0.5, 1.5]}, {"fr"}),
    ({"computed": "revenue", "op": "neq", "value": 50}, {"de", "empty", "nullish"}),
    ({"computed": "lifetime_value", "op": "between", "value": [40, 60]}, {"fr"}),
    ({"computed": "event_count", "op": "lte", "value": 0}, ALL),
    ({"computed": "recency", "op": "gt", "value": 30}, {"fr", "nullish"}),
    ({"computed": "recency", "op": "lt", "value": 10}, {"de"}),
    ({"computed": "recency", "op": "between", "value": [30, 60]}, {"fr"}),
    ({"computed": "recency", "op": "not_exists"}, {"empty"}),
    ({"computed": "recency", "op": "exists"}, {"de", "fr", "nullish"}),
    ({"computed": "last_seen", "op": "within_last", "value": {"days": 7}}, {"de"}),
    ({"computed": "last_seen", "op": "before", "value": day(50 * D)}, {"nullish"}),
    ({"computed": "last_seen", "op": "after", "value": day(41 * D)}, {"de", "fr"}),
    ({"computed": "first_seen", "op": "exists"}, {"de"}),
    ({"computed": "last_order_at", "op": "not_exists"}, {"empty", "nullish"}),
    ({"computed": "last_order_at", "op": "between", "value": [day(6 * D), day(4 * D)]}, {"de"}),
    ({"has_identifier": "email"}, {"de"}),
    ({"has_identifier": "phone"}, {"fr"}),
    ({"propensity": "purchase_30d", "op": "gte", "value": 0.5}, {"de"}),
    ({"propensity": "purchase_30d", "op": "between", "value": [0.2, 0.4]}, {"fr"}),
    ({"cluster": 2}, {"fr"}),
    (
        {"any": [{"trait": "country", "op": "eq", "value": "DE"}, {"has_identifier": "phone"}]},
        {"de", "fr"},
    ),
    (
        {"none": [{"trait": "country", "op": "eq", "value": "DE"}, {"has_identifier": "phone"}]},
        {"empty", "nullish"},
    ),
    (
        {
            "all": [
                {"trait": "country", "op": "exists"},
                {"none": [{"trait": "vip", "op": "eq", "value": True}]},
            ]
        },
        {"fr"},
    ),
]


def _check(cast, definition, expected):
    conditions.validate(definition)
    label = {p.pk: name for name, p in cast.items() if name != "saved"}
    compiled = base_profiles().filter(
        compile_definition(definition, now=NOW, segments=definition_resolver())
    )
    by_query = {label[pk] for pk in compiled.values_list("pk", flat=True)}
    by_reference = {
        name
        for pk, name in label.items()
        if conditions.evaluate(
            definition, profile_facts(profile=cast[name]), now=NOW, segments=definition_resolver()
        )
    }
    assert by_query == expected, f"compiled query: {definition}"
    assert by_reference == expected, f"reference evaluator: {definition}"
    # The real-time forms (a chunk's profiles, compiled once and reused) agree too: for each
    # profile alone and for all of them at once.
    entry = services.IndexedSegment(
        id=990,
        definition=definition,
        trait_keys=frozenset(),
        event_names=frozenset(),
        any_event=True,
        cacheable=not conditions.dependencies(definition, definition_resolver()).date_windows,
    )
    wanted = {(990, pk) for pk, name in label.items() if name in expected}
    assert (
        services.segment_memberships_evaluate(segments=[entry], profile_ids=label, now=NOW)
        == wanted
    ), f"real-time path, all profiles: {definition}"
    for pk, name in label.items():
        single = base_profiles().filter(
            compile_definition(
                definition, now=NOW, segments=definition_resolver(), profile_ids=[pk]
            ),
            pk=pk,
        )
        assert single.exists() == (name in expected), f"single profile {name}: {definition}"
        verdict = services.segment_memberships_evaluate(
            segments=[entry], profile_ids=[pk], now=NOW
        ) == {(990, pk)}
        assert verdict == (name in expected), f"real-time path {name}: {definition}"


@pytest.mark.parametrize(("definition", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_every_operator_agrees_with_the_expected_members(cast, definition, expected):
    _check(cast, definition, expected)


def test_segment_membership_conditions_inline_the_referenced_definition(cast):
    saved = cast["saved"].pk
    _check(cast, {"segment": saved, "member": True}, {"de"})
    _check(cast, {"segment": saved, "member": False}, {"fr", "empty", "nullish"})


def test_a_merged_profile_is_in_no_segment(cast):
    cast["fr"].merged_into = cast["de"]
    cast["fr"].save()
    compiled = base_profiles().filter(
        compile_definition({"trait": "country", "op": "exists"}, now=NOW)
    )
    assert set(compiled.values_list("pk", flat=True)) == {cast["de"].pk}


def test_monetary_means_total_revenue_in_segments_and_in_the_profile_api(profile_maker):
    # Two orders of 40 and 80: monetary is the total (120), the average order is 60.
    buyer = profile_maker(order_count=2, revenue=120)
    features = profile_computed_features(buyer)
    assert features["monetary"] == 120.0 and features["average_order_value"] == 60.0
    for op, value, inside in (("eq", 120, True), ("gt", 100, True), ("lte", 60, False)):
        definition = {"computed": "monetary", "op": op, "value": value}
        compiled = base_profiles().filter(compile_definition(definition, now=NOW), pk=buyer.pk)
        assert compiled.exists() is inside
        assert conditions.evaluate(definition, profile_facts(profile=buyer), now=NOW) is inside
