"""Definitions in plain words, as the builder and the API show them."""

import pytest

from segments import conditions


@pytest.mark.parametrize(
    ("definition", "words"),
    [
        (
            {"event": "Order Completed", "first": {"op": "within_last", "value": {"days": 30}}},
            "People who first did “Order Completed” in the last 30 days",
        ),
        (
            {"event": "Signed In", "last": {"op": "within_last", "value": {"hours": 1}}},
            "People who last did “Signed In” in the last 1 hour",
        ),
        (
            {
                "event": "Product Viewed",
                "where": [{"property": "category", "op": "eq", "value": "Shoes"}],
                "last": {"op": "before", "value": "2026-01-01"},
            },
            "People who last did “Product Viewed” where category is “Shoes” before 2026-01-01",
        ),
        (
            {"event": "X", "first": {"op": "between", "value": ["2026-01-01", "2026-02-01"]}},
            "People who first did “X” between 2026-01-01 and 2026-02-01",
        ),
        (
            {"event": "X", "first": {"op": "after", "value": "2026-01-01"}},
            "People who first did “X” after 2026-01-01",
        ),
        (
            {
                "all": [
                    {"trait": "country", "op": "eq", "value": "DE"},
                    {"event": "Product Viewed", "count": {"op": "gte", "value": 2}},
                ]
            },
            "People whose country is “DE” and who did “Product Viewed” at least 2 times",
        ),
    ],
)
def test_definitions_read_as_plain_words(definition, words):
    conditions.validate(definition)
    assert conditions.describe(definition) == words
