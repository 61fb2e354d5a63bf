"""Batch scoring: a block of people gets exactly the lists each person gets alone, and the
top-k step's answer is the one a plain sort gives (ties in item order)."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from recommendations.recommenders import build
from recommendations.recommenders.artifacts import bundle_dump, bundle_fit, bundle_load
from recommendations.recommenders.base import Histories, top_k
from tests.recommendations.generated import taste_data


def sorted_top_k(scores, k, exclude=None):
    """The reference: every row sorted by score, then item index; excluded and non-finite
    items left out."""
    lists = []
    for row, values in enumerate(np.asarray(scores, dtype=np.float32)):
        items = [
            i
            for i in range(len(values))
            if np.isfinite(values[i]) and (exclude is None or not exclude[row, i])
        ]
        items.sort(key=lambda i: (-values[i], i))
        lists.append([(i, float(values[i])) for i in items[:k]])
    return lists


def test_top_k_on_a_hand_made_block_with_ties():
    scores = np.array(
        [
            [1.0, 3.0, 3.0, 2.0, 3.0],  # three tied at the top, k=2: the first two
            [0.0, 0.0, 0.0, 0.0, 0.0],  # all tied
            [5.0, -np.inf, np.nan, 4.0, 4.0],  # -inf and NaN never listed
            [2.0, 1.0, 2.0, 1.0, 2.0],  # all seen (below)
        ]
    )
    seen = np.zeros(scores.shape, dtype=bool)
    seen[3] = True
    seen[0, 1] = True
    assert top_k(scores, 2, seen) == [
        [(2, 3.0), (4, 3.0)],
        [(0, 0.0), (1, 0.0)],
        [(0, 5.0), (3, 4.0)],
        [],
    ]
    assert top_k(scores, 9)[2] == [(0, 5.0), (3, 4.0), (4, 4.0)]  # k beyond the items
    assert top_k(scores, 0) == [[], [], [], []]
    assert top_k(scores, 2, sp.csr_matrix(seen)) == top_k(scores, 2, seen)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=12),
        # Few distinct values: ties everywhere, at and across the k-th place.
        elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, -np.inf, np.nan]),
    ),
    st.integers(0, 14),
    st.randoms(use_true_random=False),
)
def test_top_k_is_the_sorted_order_with_ties_in_item_order(scores, k, rng):
    exclude = np.array([[rng.random() < 0.2 for _ in row] for row in scores], dtype=bool)
    assert top_k(scores, k, exclude) == sorted_top_k(scores, k, exclude)
    assert top_k(scores, k, sp.csr_matrix(exclude)) == sorted_top_k(scores, k, exclude)


def with_newcomer_and_everything_seen(data):
    """Everyone's histories plus a person without history; the exclusion matrix has their
    own items, and everything for the last person with history."""
    histories = data.histories()
    empty = sp.csr_matrix((1, data.n_items), dtype=np.float32)
    block = Histories(
        weighted=sp.vstack([histories.weighted, empty]).tocsr(),
        strongest=sp.vstack([histories.strongest, empty]).tocsr(),
        purchases=sp.vstack([histories.purchases, empty]).tocsr(),
        groups=[*histories.groups, "north"],
    )
    seen = data.matrix("sum").toarray() > 0
    seen[len(histories) - 1] = True
    seen = np.vstack([seen, np.zeros((1, data.n_items), dtype=bool)])
    return block, seen


@pytest.mark.parametrize(
    "kind", ["hybrid", "ease", "als", "content", "popularity", "trending", "buy_again"]
)
def test_a_block_of_people_gets_the_lists_each_person_gets_alone(kind):
    data = taste_data()
    block, seen = with_newcomer_and_everything_seen(data)
    model = build(kind).fit(data)
    together = model.recommend(block, 5, seen)
    alone = [model.recommend(block.row(p), 5, seen[p : p + 1])[0] for p in range(len(block))]
    if kind in ("als", "hybrid"):
        # implicit solves one person's factors and many people's in different float orders:
        # the same items, scores equal to float32 precision.
        assert [[i for i, _ in r] for r in together] == [[i for i, _ in r] for r in alone]
        for mine, theirs in zip(together, alone, strict=True):
            assert [s for _, s in mine] == pytest.approx([s for _, s in theirs], rel=1e-5)
    else:
        assert together == alone
    assert together[-2] == []  # everything seen
    # No history: buy again has nothing; the others have a list (all zeros at worst).
    assert len(together[-1]) == (0 if kind == "buy_again" else 5)


def test_ease_with_items_left_out_scores_them_zero_and_keeps_the_others_weights():
    data = taste_data()
    bundle = bundle_fit(kind="ease", params={"max_items": 10}, data=data, digest="x")
    model = bundle.model
    histories = data.histories()
    scores = model.scores(histories)
    left_out = np.setdiff1d(np.arange(data.n_items), model.kept)
    assert len(model.kept) == 10 and not scores[:, left_out].any()
    over_kept = (histories.strongest[:, model.kept] @ model.weights).toarray()
    assert np.array_equal(scores[:, model.kept], over_kept)
    # The wide copy of the weights is not saved in the artifact, and rebuilt after loading.
    saved = bundle_dump(bundle)
    assert model._item_weights is not None
    loaded = bundle_load(saved).model
    assert loaded._item_weights is None
    assert np.array_equal(loaded.scores(histories), scores)
