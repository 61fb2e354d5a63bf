"""The propensity features and model: pure frames in and out, no database."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from segments.ml.features import (
    DECAY_SCALES_DAYS,
    LINE_FEATURES,
    line_features,
    order_features,
    purchase_labels,
)
from segments.ml.propensity import capped, fit_propensity, propensity_model
from segments.ml.training import order_lines

CUT = pd.Timestamp("2024-03-31", tz="UTC")


def _orders(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """(customer, days before the cut-off, amount) rows as an orders frame."""
    return pd.DataFrame(
        {
            "customer": [c for c, _, _ in rows],
            "time": [CUT - pd.Timedelta(days=d) for _, d, _ in rows],
            "amount": [a for _, _, a in rows],
        }
    )


def test_order_features_by_hand_for_a_regular_and_a_one_order_customer():
    orders = _orders([("a", 100, 10.0), ("a", 40, 20.0), ("a", 10, 30.0), ("b", 200, 5.0)])
    feats = order_features(orders, CUT)
    a, b = feats.loc["a"], feats.loc["b"]
    assert (a["recency"], a["tenure"], a["frequency"], a["monetary"]) == (10, 100, 3, 60)
    assert (a["avg_order"], a["max_order"]) == (20, 30)
    assert (a["orders_30d"], a["orders_90d"], a["orders_180d"]) == (1, 2, 3)
    assert (a["amount_30d"], a["amount_90d"]) == (30, 50)
    # Two orders in the last 90 days against one in the 90 before: (2 + 1) / (1 + 1).
    assert a["trend_90d"] == 1.5
    assert a["mean_gap"] == 45 and math.isclose(a["gap_std"], np.std([60, 30], ddof=1))
    assert math.isclose(a["overdue"], 10 / 45) and a["days_past_expected"] == -35
    # 21 March, 20 February, 22 December: three calendar months.
    assert a["active_months"] == 3 and a["active_days"] == 3
    for scale in DECAY_SCALES_DAYS:
        expected = sum(math.exp(-age / scale) for age in (10, 40, 100))
        assert math.isclose(a[f"decay_{scale}d"], expected)
    # One order: no gaps, so regularity is missing rather than a made-up zero; counts are 0.
    assert b["frequency"] == 1 and b["orders_180d"] == 0 and b["trend_90d"] == 1
    assert all(math.isnan(b[c]) for c in ("mean_gap", "gap_std", "overdue", "days_past_expected"))


def test_activity_adds_engagement_counted_before_the_cutoff_only():
    orders = _orders([("a", 50, 10.0)])
    days = [60, 29, 6, 0.5, -1]  # the last one is after the cut-off
    activity = pd.DataFrame(
        {
            "customer": ["a"] * len(days),
            "time": [CUT - pd.Timedelta(days=d) for d in days],
            "name": "Product Viewed",
            "category": "Shoes",
        }
    )
    a = order_features(orders, CUT, activity).loc["a"]
    assert (a["events_total"], a["events_30d"], a["events_7d"]) == (4, 3, 2)
    assert math.isclose(a["last_event"], 0.5)


def _lines(rows: list[tuple[str, str, float, str, float, float]]) -> pd.DataFrame:
    """(customer, order, days before the cut-off, product, quantity, price) rows as lines."""
    return pd.DataFrame(
        {
            "customer": [r[0] for r in rows],
            "time": pd.to_datetime([CUT - pd.Timedelta(days=r[2]) for r in rows], utc=True),
            "order": [r[1] for r in rows],
            "product": [r[3] for r in rows],
            "quantity": [r[4] for r in rows],
            "price": [r[5] for r in rows],
        }
    )


def test_line_features_by_hand_basket_size_and_product_momentum():
    lines = _lines(
        [
            ("a", "o1", 100, "X", 10, 2.0),
            ("a", "o1", 100, "Y", 2, 4.0),
            ("a", "o2", 10, "X", 6, 2.0),
            ("b", "o3", 50, "Y", 1, 3.0),
            ("c", "o4", 40, "X", 1, 1.0),
            ("d", "o5", -1, "Y", 99, 9.0),  # after the cut-off: counts for nothing
        ]
    )
    feats = line_features(lines, CUT)
    a, b = feats.loc["a"], feats.loc["b"]
    assert (a["products"], a["products_90d"], a["lines_per_order"]) == (2, 1, 1.5)
    assert (a["qty_per_order"], a["median_qty"]) == (9, 6)
    assert math.isclose(a["mean_price"], 8 / 3)
    # X: one buyer in the last 30 days (a) against one (c) in the 60 days before, 0.5 a month;
    # Y: none now against b's one before. d's order after the cut-off is not seen.
    x_growth, y_growth = math.log(2 / 1.5), math.log(1 / 1.5)
    assert math.isclose(a["product_growth"], (2 * x_growth + y_growth) / 3)
    assert math.isclose(a["product_pop30"], 2 / 3)
    assert math.isclose(b["product_growth"], y_growth) and b["product_pop30"] == 0
    assert "d" not in feats.index


def test_order_features_take_line_features_with_the_same_columns_at_every_cutoff():
    orders = _orders([("a", 10, 30.0), ("e", 20, 5.0)])
    lines = _lines([("a", "o1", 10, "X", 3, 10.0)])
    feats = order_features(orders, CUT, lines=lines)
    assert set(LINE_FEATURES) <= set(feats.columns)
    # An order sent without products: no basket (0), and no momentum rather than a made-up one.
    e = feats.loc["e"]
    assert e["products"] == 0 and math.isnan(e["product_growth"])
    early = order_features(orders, CUT - pd.Timedelta(days=15), lines=lines)
    assert list(early.columns) == list(feats.columns) and early["products"].eq(0).all()


def test_order_lines_read_the_products_of_an_order_as_the_spec_sends_them():
    orders = pd.DataFrame(
        {
            "customer": [1, 2, 3],
            "time": pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03"], utc=True),
            "products": [
                [{"product_id": "p1", "sku": "S1", "price": 9.5, "quantity": 2}, {"sku": "S2"}],
                None,
                ["not a product", {"product_id": "p3", "price": "n/a", "quantity": "3"}],
            ],
        },
        index=[10, 11, 12],
    )
    lines = order_lines(orders)
    assert lines[["customer", "order", "product"]].values.tolist() == [
        [1, 10, "p1"],
        [1, 10, "S2"],
        [3, 12, "p3"],
    ]
    assert lines["quantity"].tolist() == [2, 1, 3]
    assert lines["price"].iloc[0] == 9.5 and lines["price"].iloc[1:].isna().all()


order_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.floats(min_value=-60, max_value=400, allow_nan=False),
        st.floats(min_value=0, max_value=500, allow_nan=False),
    ),
    min_size=1,
    max_size=30,
)


line_rows = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.sampled_from(["o1", "o2", "o3", "o4"]),
        st.floats(min_value=-60, max_value=400, allow_nan=False),
        st.sampled_from(["X", "Y", "Z"]),
        st.integers(min_value=1, max_value=50).map(float),
        st.floats(min_value=0, max_value=100, allow_nan=False),
    ),
    max_size=30,
)


@given(order_rows, line_rows)
def test_features_see_nothing_at_or_after_the_cutoff_and_ignore_row_order(rows, item_rows):
    orders, lines = _orders(rows), _lines(item_rows)
    before = orders[orders["time"] < CUT]
    lines_before = lines[lines["time"] < CUT]
    feats = order_features(orders, CUT, lines=lines)
    if before.empty:
        assert feats.empty
        return
    pd.testing.assert_frame_equal(
        feats, order_features(before.iloc[::-1], CUT, lines=lines_before.iloc[::-1])
    )
    assert set(feats.index) == set(before["customer"])
    labels = purchase_labels(orders, CUT, feats.index)
    after = orders[(orders["time"] >= CUT) & (orders["time"] < CUT + pd.Timedelta(days=30))]
    assert set(labels[labels == 1].index) == set(after["customer"]) & set(feats.index)


def test_the_model_averages_boosting_and_a_linear_model_into_probabilities():
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"frequency": rng.poisson(3, 600), "mean_gap": rng.uniform(1, 90, 600)})
    x.loc[:50, "mean_gap"] = np.nan  # one-order customers
    y = pd.Series((x["frequency"] + rng.normal(0, 1, 600) > 3).astype(int))
    scores = propensity_model().fit(x, y).predict_proba(x)[:, 1]
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[y.to_numpy() == 1].mean() > scores[y.to_numpy() == 0].mean()


def test_training_rows_are_capped_by_a_deterministic_sample(monkeypatch):
    monkeypatch.setattr("segments.ml.propensity.MAX_TRAIN_ROWS", 10)
    x = pd.DataFrame({"f": range(100)}, index=[7] * 100)
    y = pd.Series(range(100), index=[7] * 100)
    small_x, small_y = capped(x, y)
    assert len(small_x) == 10 and (small_x["f"].to_numpy() == small_y.to_numpy()).all()
    assert (capped(x, y)[0]["f"].to_numpy() == small_x["f"].to_numpy()).all()


@pytest.mark.parametrize(
    ("days_before", "message"),
    [
        # Every order is newer than the latest cut-off whose 30 days have passed.
        ([1, 5, 20], "not enough history: nobody had ordered before 2024-03-01"),
        # Each customer ordered once: at every cut-off nobody bought in the 30 days after.
        ([100, 150, 200, 250, 300, 350], "nothing to learn yet"),
    ],
)
def test_training_data_without_anything_to_learn_is_refused_saying_why(days_before, message):
    orders = _orders([(f"c{i}", days, 10.0) for i, days in enumerate(days_before)])
    with pytest.raises(ValueError, match=message):
        fit_propensity(orders, None, CUT)
