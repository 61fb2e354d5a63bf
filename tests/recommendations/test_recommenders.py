"""Each recommender on a generated shop where the right answer is known (two taste groups),
and the evaluation metrics on hand-computed cases."""

import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommendations.recommenders import build
from recommendations.recommenders.artifacts import bundle_dump, bundle_fit, bundle_load
from recommendations.recommenders.base import TrainingData, history_of
from recommendations.recommenders.evaluation import (
    evaluate,
    ranking_metrics,
    window_split,
)
from segments.ml.comparison import paired_bootstrap
from tests.recommendations.generated import ITEMS, NOW, WEIGHTING, group_of, taste_data

PERSONAL = ["ease", "als", "content", "hybrid"]


def own_group_share(model, data, k=5) -> float:
    histories = data.histories()
    seen = data.matrix("sum")
    lists = model.recommend(histories, k, seen)
    right = total = 0
    for person, ranked in enumerate(lists):
        group = "A" if data.user_keys[person] % 2 == 0 else "B"
        for item, _score in ranked:
            total += 1
            right += group_of(data.item_keys[item]) == group
    return right / total


@pytest.mark.parametrize("kind", PERSONAL)
def test_each_personal_model_recommends_a_person_their_own_groups_items(kind):
    data = taste_data()
    model = build(kind).fit(data)
    assert own_group_share(model, data) > 0.95


@pytest.mark.parametrize("kind", [*PERSONAL, "popularity", "trending"])
def test_similar_items_of_an_item_are_from_its_group(kind):
    data = taste_data()
    model = build(kind).fit(data)
    a1 = data.item_keys.index("a1")
    similar = [data.item_keys[i] for i, _ in model.similar_items(a1, 5)]
    if kind == "trending":
        assert all(group_of(key) == "A" for key in similar)  # same category: none set
        return
    if kind == "popularity":
        assert similar == []  # the generated items have no category
        return
    assert similar and all(group_of(key) == "A" for key in similar) and "a1" not in similar


def test_popularity_ranks_the_items_most_people_took_and_follows_the_group():
    data = taste_data(groups_follow_taste=True)
    model = build("popularity", {"days": 90, "group_weight": 2.0}).fit(data)
    nobody = history_of([], item_keys=data.item_keys, now=NOW, weighting=WEIGHTING)
    assert {data.item_keys[i] for i, _ in model.recommend(nobody, 2)[0]} == {"a0", "b0"}
    north = history_of([], item_keys=data.item_keys, now=NOW, weighting=WEIGHTING, group="north")
    best = model.recommend(north, 3)[0]
    assert data.item_keys[best[0][0]] == "a0"
    assert all(group_of(data.item_keys[i]) == "A" for i, _ in best)
    assert model.explain(north, 0, best[0][0]).code == "popular_in_group"


def test_popularity_with_a_first_day_weight_follows_what_newcomers_took_up_first():
    records = []
    for person in range(10):  # regulars restock a0 every week
        for week in range(8):
            at = NOW - timedelta(days=7 * week + 1)
            records.append((person, "a0", "purchase", at.replace(tzinfo=None)))
    for person in range(10, 16):  # newcomers start with b5, and buy a0 later
        first = (NOW - timedelta(days=20)).replace(tzinfo=None)
        records.append((person, "b5", "purchase", first))
        records.append((person, "a0", "purchase", first + timedelta(days=3)))
    data = TrainingData.from_records(records, now=NOW, **WEIGHTING)
    nobody = history_of([], item_keys=data.item_keys, now=NOW, weighting=WEIGHTING)
    plain = build("popularity").fit(data)
    newcomers = build("popularity", {"first_weight": 4.0}).fit(data)
    assert data.item_keys[plain.recommend(nobody, 1)[0][0][0]] == "a0"
    assert data.item_keys[newcomers.recommend(nobody, 1)[0][0][0]] == "b5"


def test_buy_again_returns_only_the_persons_own_purchases():
    data = taste_data()
    model = build("buy_again").fit(data)
    histories = data.histories([0])
    ranked = model.recommend(histories, 10)[0]
    own = set(histories.purchases[0].indices)
    assert ranked and {item for item, _ in ranked} <= own
    assert model.explain(histories, 0, ranked[0][0]).code == "bought_before"


def test_a_new_event_changes_a_persons_list_without_retraining():
    data = taste_data()
    model = build("ease").fit(data)
    garden = history_of(
        [("a1", "purchase", NOW.replace(tzinfo=None))],
        item_keys=data.item_keys,
        now=NOW,
        weighting=WEIGHTING,
    )
    kitchen = history_of(
        [("b1", "purchase", NOW.replace(tzinfo=None))],
        item_keys=data.item_keys,
        now=NOW,
        weighting=WEIGHTING,
    )
    first = data.item_keys[model.recommend(garden, 1)[0][0][0]]
    second = data.item_keys[model.recommend(kitchen, 1)[0][0][0]]
    assert group_of(first) == "A" and group_of(second) == "B"


def test_content_reaches_an_item_nobody_touched():
    data = taste_data()
    data.item_keys.append("a-new")
    data.item_text.append("garden tool spade rake brand new")
    data.item_category.append("")
    model = build("content").fit(data)
    similar = [data.item_keys[i] for i, _ in model.similar_items(data.item_keys.index("a1"), 20)]
    assert "a-new" in similar


@pytest.mark.parametrize("kind", PERSONAL)
def test_explanations_name_an_item_of_the_persons_history(kind):
    data = taste_data()
    model = build(kind).fit(data)
    histories = data.histories([0])
    item = model.recommend(histories, 1, data.matrix("sum", [0]))[0][0][0]
    reason = model.explain(histories, 0, item)
    if reason.item is not None:
        assert reason.item in set(histories.weighted[0].indices)
    assert reason.code


@pytest.mark.parametrize("kind", PERSONAL)
def test_explaining_many_items_at_once_words_each_as_explaining_it_alone(kind):
    data = taste_data()
    model = build(kind).fit(data)
    for person in range(0, len(data.user_keys), 7):
        histories = data.histories([person])
        items = list(range(len(data.item_keys)))
        assert model.explain_many(histories, 0, items) == [
            model.explain(histories, 0, item) for item in items
        ]


@pytest.mark.parametrize("kind", PERSONAL)
def test_scores_explained_are_the_models_scores_and_reasons(kind):
    """What serving calls: one person's scores exactly as `scores` gives them (the hybrid
    blends component scores it also words reasons from) and `explain_many`'s reasons."""
    data = taste_data()
    model = build(kind).fit(data)
    nobody = history_of([], item_keys=data.item_keys, now=NOW, weighting=WEIGHTING)
    items = list(range(len(data.item_keys)))
    for histories in [data.histories([person]) for person in range(0, 60, 11)] + [nobody]:
        scores, explain = model.scores_explained(histories)
        assert np.array_equal(scores, model.scores(histories)[0])
        assert explain(items) == model.explain_many(histories, 0, items)


def test_the_hybrid_tunes_its_weights_on_a_validation_window_inside_the_data():
    data = taste_data(people=120, days=120)
    model = build("hybrid").fit(data)
    assert model.validation["people"] > 0
    assert set(model.weights) == {"ease", "als", "content", "popularity", "trending"}
    assert model.weights["content"] >= 0.05  # the floor that keeps new items reachable


def test_evaluation_on_the_last_days_is_better_for_a_model_than_for_popularity():
    data = taste_data(people=120, days=120)
    split = window_split(data, days=30)
    assert len(split.rows) > 10
    model = evaluate(build("ease").fit(split.train), split)
    popular = evaluate(build("popularity").fit(split.train), split)
    assert model.metrics["ndcg"] > popular.metrics["ndcg"]
    interval = paired_bootstrap(model.per_person, popular.per_person)
    assert interval["low"] > 0


def test_ranking_metrics_on_a_hand_computed_list():
    metrics = ranking_metrics([5, 1, 7, 2], {1, 2, 9}, 4)
    assert metrics["precision"] == 0.5
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["hit_rate"] == 1.0
    assert metrics["map"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert metrics["ndcg"] == pytest.approx(dcg / ideal)


def test_a_bundle_round_trips_and_carries_no_person():
    data = taste_data()
    bundle = bundle_fit(kind="hybrid", params={}, data=data, digest="x")
    loaded = bundle_load(bundle_dump(bundle))
    assert loaded.item_keys == data.item_keys
    assert loaded.model.components["als"].model.user_factors.shape[0] == 0
    histories = data.histories([0, 1])
    assert np.allclose(loaded.model.scores(histories), bundle.model.scores(histories))


def test_the_groups_are_what_the_generated_shop_says():
    assert len(ITEMS["A"]) == len(ITEMS["B"]) == 12


@settings(max_examples=60, deadline=None)
@given(
    records=st.lists(
        st.tuples(
            st.sampled_from(["a0", "a1", "b0", "unknown"]),
            st.sampled_from(["view", "cart", "purchase", "other"]),
            st.integers(min_value=-3 * 86_400, max_value=400 * 86_400),
        ),
        max_size=25,
    )
)
def test_a_persons_history_is_the_row_training_data_gives_them(records):
    """Serving builds one person's rows directly (history_of); they must be the rows the
    training data's path gives the same records, interactions of unknown items and kinds,
    repeats of an item and times after `now` included."""
    item_keys = ["a0", "a1", "b0", "b1"]
    naive_now = NOW.replace(tzinfo=None)
    timed = [(item, kind, naive_now - timedelta(seconds=ago)) for item, kind, ago in records]
    served = history_of(timed, item_keys=item_keys, now=NOW, weighting=WEIGHTING, group="north")
    data = TrainingData.from_records(
        [(0, *record) for record in timed],
        item_keys=item_keys,
        now=NOW,
        user_group={0: "north"},
        **WEIGHTING,
    )
    assert served.groups == ["north"]
    if data.n_users == 0:  # no interaction with an item the model knows
        assert served.weighted.nnz == served.strongest.nnz == served.purchases.nnz == 0
        return
    trained = data.histories()
    for name in ("weighted", "strongest", "purchases"):
        ours, theirs = getattr(served, name), getattr(trained, name)
        assert ours.shape == theirs.shape == (1, len(item_keys))
        np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-6)
