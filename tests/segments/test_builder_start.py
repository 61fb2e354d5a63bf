"""The builder's first impression: a starting condition that matches people on the workspace's
data, observed trait keys first, and each computed figure offered once."""

import json

import pytest

from profiles.models import Profile
from segments import conditions, selectors

pytestmark = pytest.mark.django_db


def _vocabulary(page: str) -> dict:
    start = page.index('id="segment-vocabulary"')
    return json.loads(page[page.index(">", start) + 1 : page.index("</script>", start)])


def test_the_starting_condition_matches_people_on_the_data(staff_client, marketer):
    for country in ["Germany", "Germany", "France"]:
        Profile.objects.create(traits={"address": {"country": country}, "plan": "pro"})
    definition = selectors.starter_definition()
    assert definition == {"all": [{"trait": "address.country", "op": "eq", "value": "Germany"}]}
    conditions.validate(definition)
    assert selectors.definition_count(definition) == 2
    page = staff_client(marketer).get("/segments/new/").content.decode()
    assert "address.country" in page and "Germany" in page


def test_without_traits_the_start_is_a_condition_that_still_validates(staff_client, marketer):
    Profile.objects.create(traits={})
    definition = selectors.starter_definition()
    conditions.validate(definition)
    assert selectors.definition_count(definition) == 0
    assert staff_client(marketer).get("/segments/new/").status_code == 200


def test_observed_trait_keys_come_most_common_first(db):
    Profile.objects.create(traits={"zeta": "a"})
    for _ in range(3):
        Profile.objects.create(traits={"zeta": "b", "alpha": 1, "address": {"city": "Oslo"}})
    Profile.objects.create(traits={"zeta": "c", "alpha": 2})
    assert list(selectors.observed_trait_keys()) == ["zeta", "alpha", "address.city"]


def test_each_computed_figure_is_offered_once(staff_client, marketer):
    page = staff_client(marketer).get("/segments/new/").content.decode()
    computed = _vocabulary(page)["computed"]
    labels = [label for _, label, _ in computed]
    assert len(labels) == len(set(labels))
    names = [name for name, _, _ in computed]
    assert "frequency" in names and "order_count" not in names
    assert "monetary" in names and not {"revenue", "lifetime_value"} & set(names)
