"""Business rules after scoring (recommendations.rules): a pure function, tested directly."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommendations.rules import (
    Candidate,
    ContextBoost,
    InvalidRules,
    Rules,
    rules_apply,
    rules_validate,
)

ITEMS = [
    Candidate("k1", 0.9, "Kitchen > Pans", "Pan Co", Decimal("10")),
    Candidate("k2", 0.8, "Kitchen > Pans", "Pan Co", Decimal("30")),
    Candidate("k3", 0.7, "Kitchen > Knives", "Blade", Decimal("50")),
    Candidate("g1", 0.6, "Garden", "Spade Co", Decimal("5")),
    Candidate("g2", 0.5, "Garden", "Spade Co", None),
    Candidate("x1", 0.4, "Kitchen", "Pan Co", Decimal("20"), in_stock=False),
]


def keys(rules: Rules, k: int = 10) -> list[str]:
    return [c.key for c in rules_apply(ITEMS, rules, k)]


def test_out_of_stock_and_excluded_items_never_pass():
    assert "x1" not in keys(Rules())
    assert keys(Rules(exclude=frozenset({"k1", "g2"}))) == ["k2", "k3", "g1"]


def test_category_brand_and_price_filters():
    assert keys(Rules(categories=("Kitchen",))) == ["k1", "k2", "k3"]
    assert keys(Rules(exclude_categories=("Kitchen > Pans",))) == ["k3", "g1", "g2"]
    assert keys(Rules(brands=("Spade Co",))) == ["g1", "g2"]
    assert keys(Rules(exclude_brands=("Pan Co",))) == ["k3", "g1", "g2"]
    # An item without a price is outside any price band.
    assert keys(Rules(price_min=Decimal("6"), price_max=Decimal("30"))) == ["k1", "k2"]


def test_boost_bury_and_the_pages_category_rerank():
    assert keys(Rules(boost=frozenset({"g2"}), boost_factor=3.0))[0] == "g2"
    assert keys(Rules(bury=frozenset({"k1"})))[-1] == "k1"
    assert keys(Rules(bury=frozenset({"k1"})), k=3) == ["k2", "k3", "g1"]
    assert keys(Rules(context_category="Garden", context_category_factor=2.0))[:2] == ["g1", "g2"]


def test_diversity_caps_a_category_but_never_shortens_the_list():
    assert keys(Rules(max_per_category=1), k=2) == ["k1", "g1"]
    assert keys(Rules(max_per_category=1), k=4) == ["k1", "g1", "k2", "k3"]


@pytest.mark.parametrize(
    "rules",
    [{"max_per_category": 0}, {"boost": "k1"}, {"colour": "red"}, {"boost_factor": 0.5}],
)
def test_rule_sets_are_validated_against_their_schema(rules):
    with pytest.raises(InvalidRules):
        rules_validate(rules)


GARDEN_ON_EVENING_PHONES = ContextBoost(
    categories=("Garden",), factor=3.0, device="mobile", hours=(20, 2)
)


@pytest.mark.parametrize(
    ("device", "hour", "first"),
    [
        ("mobile", 21, "g1"),
        ("mobile", 1, "g1"),  # the window wraps past midnight
        ("mobile", 2, "k1"),  # [20, 2): 2 am is outside
        ("mobile", None, "k1"),  # a boost that names hours needs the visitor's hour
        ("desktop", 21, "k1"),
        ("", 21, "k1"),
    ],
)
def test_context_boosts_apply_on_their_device_and_hours(device, hour, first):
    rules = Rules(context_boosts=(GARDEN_ON_EVENING_PHONES,), device=device, hour=hour)
    assert keys(rules)[0] == first


def test_a_context_boost_without_conditions_or_below_one():
    always = ContextBoost(categories=("Kitchen > Knives",), factor=5.0)
    assert keys(Rules(context_boosts=(always,)))[0] == "k3"
    lower = ContextBoost(categories=("Kitchen",), factor=0.1, device="tablet")
    assert keys(Rules(context_boosts=(lower,), device="tablet"))[:2] == ["g1", "g2"]


@given(start=st.integers(0, 23), end=st.integers(0, 23))
def test_an_hours_window_holds_exactly_its_length_in_hours(start, end):
    boost = ContextBoost(categories=("Garden",), factor=2.0, hours=(start, end))
    inside = [hour for hour in range(24) if boost.applies("", hour)]
    assert len(inside) == (end - start) % 24
    assert all((hour - start) % 24 < (end - start) % 24 for hour in inside)


def test_the_rule_set_builds_its_context_boosts():
    rules = Rules.from_rule_set(
        {
            "context_boosts": [
                {"device": "mobile", "hours": [20, 2], "categories": ["Garden"], "factor": 3}
            ]
        },
        device="mobile",
        hour=22,
    )
    assert rules.context_boosts == (GARDEN_ON_EVENING_PHONES,)
    assert keys(rules)[0] == "g1"


@pytest.mark.parametrize(
    "boost",
    [
        {"categories": ["Garden"]},  # no factor
        {"categories": [], "factor": 2},
        {"categories": ["Garden"], "factor": 2, "device": "phone"},
        {"categories": ["Garden"], "factor": 2, "hours": [20]},
        {"categories": ["Garden"], "factor": 2, "hours": [20, 24]},
        {"categories": ["Garden"], "factor": 0},
        {"categories": ["Garden"], "factor": 2, "weekday": 1},
    ],
)
def test_bad_context_boosts_are_refused_saying_where(boost):
    with pytest.raises(InvalidRules, match="context_boosts/0"):
        rules_validate({"context_boosts": [boost]})
