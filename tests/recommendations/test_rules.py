"""Business rules after scoring (recommendations.rules): a pure function, tested directly."""

from decimal import Decimal

import pytest

from recommendations.rules import Candidate, InvalidRules, Rules, rules_apply, rules_validate

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
