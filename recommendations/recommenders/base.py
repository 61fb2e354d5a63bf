"""The contract every recommender keeps, and the data they learn from.

A recommender is a small class:

    fit(data: TrainingData) -> self
        Learn from the interactions. Keeps only item-side state (item factors, item-item
        weights, popularity per item and group): a fitted recommender holds no row per person,
        so a saved artifact carries no one's data and an erasure has no artifact to rewrite.
    scores(users: Histories) -> ndarray (len(users) x n_items)
        Higher is better, for every item of the training index; a person is described only by
        the history passed in (folded in at request time), so a new event counts at once.
    recommend(users, k, exclude=None) -> [[(item, score), ...], ...]
        The k best items per person, `exclude` (a boolean matrix or None) left out.
    similar_items(item, k) -> [(item, score), ...]
        Items like this one, itself excluded; [] when the model has no notion of it.
    explain(users, row, item) -> Reason
        Why `item` is recommended to person `row` of `users`: the history item that
        contributed most, or the popularity that put it there. `explain_many(users, row,
        items)` does the same for several items at once.
    scores_explained(users) -> (scores, explain)
        One person's scores and a function wording the reasons of some of their items, the
        work `scores` and `explain_many` share done once (what serving a list calls).

Items and people are positions: `TrainingData.item_keys[i]` is item i's external id. No ORM
here; heavy imports (numpy, scipy, implicit, scikit-learn) happen inside functions so that
importing the app stays cheap for the web process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from recommendations.interactions import (
    PURCHASE,
    age_days,
    interaction_weights,
    kind_weights,
    naive_utc,
)


@dataclass(frozen=True)
class Reason:
    """Why an item is there: `code` names the kind of reason; `item` is the history item that
    contributed most (an index), when there is one. `serving` words it."""

    code: str
    item: int | None = None
    group: str = ""


@dataclass
class TrainingData:
    """Interactions as parallel arrays (one entry per interaction), plus what content models
    read about items and which group (country, segment...) each person is in.

    `user_keys[u]` is the caller's key of person u (a profile id); `item_keys[i]` the item's
    external id. `times` are naive UTC datetime64; `now` is when the data ends.
    """

    user_keys: Any
    item_keys: list[str]
    users: Any
    items: Any
    kinds: Any
    times: Any
    now: datetime
    weights: Mapping[str, float]
    half_life_days: float
    # Purchases for "buy again" decay on their own, slower clock: what someone restocks
    # twice a year is still theirs to buy again.
    repeat_half_life_days: float
    item_text: list[str] = field(default_factory=list)
    item_category: list[str] = field(default_factory=list)
    user_group: list[str] = field(default_factory=list)

    @classmethod
    def from_records(
        cls,
        records: Iterable[tuple[Any, str, str, datetime]],
        *,
        now: datetime,
        weights: Mapping[str, float],
        half_life_days: float,
        repeat_half_life_days: float,
        item_text: Mapping[str, str] | None = None,
        item_category: Mapping[str, str] | None = None,
        user_group: Mapping[Any, str] | None = None,
        extra_items: Iterable[str] = (),
        item_keys: Sequence[str] | None = None,
    ) -> TrainingData:
        """From (person key, item key, kind, naive UTC time) records. Items are every item
        of the records plus `extra_items` (catalog items nobody touched yet, which content
        similarity can still reach), in a stable order; or exactly `item_keys` (a fitted
        model's), records of other items left out."""
        import numpy as np

        rows = list(records)
        if item_keys is None:
            item_keys = sorted({r[1] for r in rows} | set(extra_items))
        else:
            known = set(item_keys)
            rows = [r for r in rows if r[1] in known]
        item_keys = list(item_keys)
        user_keys = sorted({r[0] for r in rows})
        user_pos = {key: i for i, key in enumerate(user_keys)}
        item_pos = {key: i for i, key in enumerate(item_keys)}
        text, category, group = item_text or {}, item_category or {}, user_group or {}
        return cls(
            user_keys=np.asarray(user_keys),
            item_keys=item_keys,
            users=np.fromiter((user_pos[r[0]] for r in rows), np.int64, len(rows)),
            items=np.fromiter((item_pos[r[1]] for r in rows), np.int64, len(rows)),
            kinds=np.asarray([r[2] for r in rows], dtype="<U8"),
            times=np.asarray([r[3] for r in rows], dtype="datetime64[s]"),
            now=now,
            weights=dict(weights),
            half_life_days=half_life_days,
            repeat_half_life_days=repeat_half_life_days,
            item_text=[text.get(key, "") for key in item_keys],
            item_category=[category.get(key, "") for key in item_keys],
            user_group=[group.get(key, "") for key in user_keys],
        )

    @property
    def n_users(self) -> int:
        return len(self.user_keys)

    @property
    def n_items(self) -> int:
        return len(self.item_keys)

    def interaction_weights(self, half_life_days: float | None = None) -> Any:
        return interaction_weights(
            kinds=self.kinds,
            times=self.times,
            now=self.now,
            weights=self.weights,
            half_life_days=half_life_days or self.half_life_days,
        )

    def matrix(self, how: str = "sum", rows: Any = None) -> Any:
        """Person x item weights (CSR): the sum of their interactions' weights, or the
        strongest one (`how="max"`), for all people or the given rows (in that order)."""
        return _matrix(self, self.interaction_weights(), how, rows)

    def purchase_matrix(self, rows: Any = None) -> Any:
        """Person x item: purchases, each counted with its recency decay."""
        import numpy as np

        decayed = self.interaction_weights(self.repeat_half_life_days)
        weights = np.where(self.kinds == PURCHASE, decayed, 0.0)
        weights = weights / max(self.weights.get(PURCHASE, 1.0), 1e-9)
        return _matrix(self, weights, "sum", rows)

    def histories(self, rows: Any = None) -> Histories:
        """What the recommenders need to score these people (all of them by default)."""
        import numpy as np

        rows = np.arange(self.n_users) if rows is None else np.asarray(rows)
        groups = [self.user_group[r] if self.user_group else "" for r in rows]
        return Histories(
            weighted=self.matrix("sum", rows),
            strongest=self.matrix("max", rows),
            purchases=self.purchase_matrix(rows),
            groups=groups,
        )

    def before(self, cutoff: datetime) -> TrainingData:
        """The interactions before `cutoff`, as if the data ended there (same indexes)."""
        import numpy as np

        keep = self.times < np.datetime64(naive_utc(cutoff), "s")
        return replace(
            self,
            users=self.users[keep],
            items=self.items[keep],
            kinds=self.kinds[keep],
            times=self.times[keep],
            now=cutoff,
        )

    def _on_first_day(self) -> Any:
        return _first_day(self.users, self.times, self.n_users)

    def window(self, start: datetime, end: datetime | None = None) -> Any:
        """The interactions from `start` (to `end`) as a boolean mask."""
        import numpy as np

        mask = self.times >= np.datetime64(naive_utc(start), "s")
        if end is not None:
            mask &= self.times < np.datetime64(naive_utc(end), "s")
        return mask

    def item_counts(
        self, since_days: float | None = None, people: Any = None, *, first_day: bool = False
    ) -> Any:
        """Per item: the people (all, or these rows) who interacted with it within
        `since_days`, each counted with the weight of their strongest kind; with `first_day`,
        only what people took up on the first day they were seen (newcomers' choices)."""
        import numpy as np

        keep = np.ones(len(self.users), dtype=bool)
        if since_days is not None:
            keep &= age_days(self.times, self.now) < since_days
        if people is not None:
            keep &= np.isin(self.users, people)
        if first_day:
            keep &= self._on_first_day()
        weights = np.where(keep, kind_weights(self.kinds, self.weights), 0.0)
        pairs = _matrix(self, weights, "max", None)
        return np.asarray(pairs.sum(axis=0)).ravel()


def _first_day(users: Any, times: Any, n_users: int) -> Any:
    """Whether each interaction fell on the first (UTC) day its person was seen."""
    import numpy as np

    days = np.asarray(times, "datetime64[D]").astype(np.int64)
    first = np.full(n_users, np.iinfo(np.int64).max)
    np.minimum.at(first, users, days)
    return days == first[users]


def _matrix(data: TrainingData, weights: Any, how: str, rows: Any) -> Any:
    import numpy as np
    import scipy.sparse as sp

    users, items = data.users, data.items
    n_rows = data.n_users
    if rows is not None:
        rows = np.asarray(rows)
        position = np.full(data.n_users, -1)
        position[rows] = np.arange(len(rows))
        keep = position[users] >= 0
        users, items, weights = position[users[keep]], items[keep], weights[keep]
        n_rows = len(rows)
    keep = weights > 0
    users, items, weights = users[keep], items[keep], weights[keep]
    if how == "max":
        order = np.lexsort((-weights, items, users))
        users, items, weights = users[order], items[order], weights[order]
        first = np.ones(len(users), dtype=bool)
        first[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
        users, items, weights = users[first], items[first], weights[first]
    matrix = sp.csr_matrix(
        (weights.astype(np.float32), (users, items)), shape=(n_rows, data.n_items)
    )
    matrix.sum_duplicates()
    return matrix


@dataclass
class Histories:
    """The people to score, one row each over the model's items: summed and strongest
    interaction weights, decayed purchase counts, and each one's group ("" when unknown)."""

    weighted: Any
    strongest: Any
    purchases: Any
    groups: Sequence[str]

    def __len__(self) -> int:
        return int(self.weighted.shape[0])

    def row(self, index: int) -> Histories:
        return self.select([index])

    def select(self, rows: Sequence[int]) -> Histories:
        return Histories(
            weighted=self.weighted[rows],
            strongest=self.strongest[rows],
            purchases=self.purchases[rows],
            groups=[self.groups[r] for r in rows],
        )


class Recommender:
    """Base of the recommenders: `recommend` from `scores`; see the module's contract."""

    name = "base"
    # Keys of `params` that `fit` reads; recorded with each training run.
    params: dict[str, Any]

    def fit(self, data: TrainingData) -> Recommender:
        raise NotImplementedError

    def scores(self, users: Histories) -> Any:
        raise NotImplementedError

    def recommend(
        self, users: Histories, k: int = 10, exclude: Any = None
    ) -> list[list[tuple[int, float]]]:
        return top_k(self.scores(users), k, exclude)

    def similar_items(self, item: int, k: int = 10) -> list[tuple[int, float]]:
        return []

    def explain(self, users: Histories, row: int, item: int) -> Reason:
        return Reason("recommended")

    def explain_many(self, users: Histories, row: int, items: Sequence[int]) -> list[Reason]:
        """`explain` for several items of one person (a model may share work between them)."""
        return [self.explain(users, row, item) for item in items]

    def scores_explained(self, users: Histories) -> tuple[Any, Explainer]:
        """Person 0's row of `scores`, and `explain_many` of their items."""
        return self.scores(users)[0], lambda items: self.explain_many(users, 0, items)


Explainer = Callable[[Sequence[int]], list[Reason]]


@contextmanager
def ml_threads() -> Iterator[None]:
    """OpenBLAS, OpenMP and MKL at one thread for the block: the ml queue shares small
    machines with everything else, and workers scale by processes (two threads made ALS 2.8x
    slower on a loaded 2-core machine, and spinning threads starve their neighbours)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def top_k(scores: Any, k: int, exclude: Any = None) -> list[list[tuple[int, float]]]:
    """The k highest-scoring items per row, best first, equal scores in item order; `exclude`
    (boolean, same shape, or a sparse matrix whose non-zeros are excluded) and items scored
    -inf or NaN are left out."""
    import numpy as np

    scores = np.array(scores, dtype=np.float32, copy=True)
    scores[np.isnan(scores)] = -np.inf
    if exclude is not None:
        if hasattr(exclude, "tocoo"):
            coo = exclude.tocoo()
            scores[coo.row, coo.col] = -np.inf
        else:
            scores[np.asarray(exclude, dtype=bool)] = -np.inf
    n_rows, n_items = scores.shape
    k = min(k, n_items)
    if k <= 0:
        return [[] for _ in range(n_rows)]
    # The k-th best value of each row, then the items at or above it: no rows x items index
    # array (an argpartition's int64 one is twice the scores' size, and was a third of a
    # cold batch pass on UCI Online Retail).
    kth = np.partition(scores, n_items - k, axis=1)[:, n_items - k, None]
    chosen = scores >= kth
    counts = np.count_nonzero(chosen, axis=1)
    for row in np.flatnonzero(counts > k):  # ties at the k-th value: the first items win
        tied = np.flatnonzero(scores[row] == kth[row])
        chosen[row, tied[k - (counts[row] - len(tied)) :]] = False
    best = (np.flatnonzero(chosen) % n_items).reshape(n_rows, k)
    values = np.take_along_axis(scores, best, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    best, values = np.take_along_axis(best, order, axis=1), np.take_along_axis(values, order, 1)
    finite = np.isfinite(values)
    return [
        [(i, v) for i, v, ok in zip(row.tolist(), vals.tolist(), oks.tolist(), strict=True) if ok]
        for row, vals, oks in zip(best, values, finite, strict=True)
    ]


def scaled(values: Any) -> Any:
    """A vector divided by its largest value (unchanged when that is not positive)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    peak = values.max() if len(values) else 0.0
    return values / peak if peak > 0 else values


def normalised(scores: Any, weight: float = 1.0) -> Any:
    """Each row divided by its largest absolute value (times `weight`), so models on
    different scales blend; float32, in place when `scores` already is."""
    import numpy as np

    scores = np.asarray(scores, dtype=np.float32)
    if scores.size == 0:
        return scores
    peak = np.maximum(scores.max(axis=1), -scores.min(axis=1))
    factor = np.where(peak > 0, weight / np.where(peak > 0, peak, 1.0), weight)
    scores *= factor[:, None].astype(np.float32)
    return scores


def strongest_contributor(history_row: Any, contributions: Any) -> int | None:
    """The history item (index) whose contribution to an item's score is largest."""
    import numpy as np

    indices = history_row.indices
    if len(indices) == 0:
        return None
    values = np.asarray(contributions)[indices] * history_row.data
    best = int(np.argmax(values))
    return int(indices[best]) if values[best] > 0 else None


def strongest_contributors(
    history_row: Any, contributions: Any, items: Sequence[int]
) -> list[int | None]:
    """`strongest_contributor` for each of `items`, where `contributions[h, i]` is what
    history item h gives item i (an items x items sparse matrix), from one slice of it (a
    column of a CSR matrix per item cost ~0.8 ms)."""
    indices = history_row.indices
    if len(indices) == 0 or not len(items):
        return [None] * len(items)
    values = contributions[indices][:, list(items)].toarray() * history_row.data[:, None]
    best = values.argmax(axis=0)
    return [
        int(indices[row]) if values[row, column] > 0 else None for column, row in enumerate(best)
    ]


def history_of(
    records: Iterable[tuple[str, str, datetime]],
    *,
    item_keys: Sequence[str],
    now: datetime,
    weighting: Mapping[str, Any],
    group: str = "",
    item_index: Mapping[str, int] | None = None,
) -> Histories:
    """One person's history as a fitted model sees it: their (item key, kind, naive UTC
    time) records over the model's `item_keys`, weighted as at training (`weighting`: weights
    and half-lives), the same rows `TrainingData.histories` gives. Items the model does not
    know are left out. `item_index` (key -> position in `item_keys`) saves building it.

    Built for the one person directly: a request answering a list has this on its path, and
    going through `TrainingData` cost ~1 ms of CPU per answer in work per catalog item (its
    item index and text columns)."""
    import numpy as np

    index = item_index if item_index is not None else {k: i for i, k in enumerate(item_keys)}
    known = [(index[item], kind, at) for item, kind, at in records if item in index]
    items = np.fromiter((r[0] for r in known), np.int64, len(known))
    kinds = np.asarray([r[1] for r in known], dtype="<U8")
    times = np.asarray([r[2] for r in known], dtype="datetime64[s]")
    weights = weighting["weights"]
    weighted = interaction_weights(
        kinds=kinds,
        times=times,
        now=now,
        weights=weights,
        half_life_days=weighting["half_life_days"],
    )
    decayed = interaction_weights(
        kinds=kinds,
        times=times,
        now=now,
        weights=weights,
        half_life_days=weighting["repeat_half_life_days"] or weighting["half_life_days"],
    )
    purchases = np.where(kinds == PURCHASE, decayed, 0.0) / max(weights.get(PURCHASE, 1.0), 1e-9)
    n_items = len(item_keys)
    return Histories(
        weighted=_row(items, weighted, np.add, n_items),
        strongest=_row(items, weighted, np.maximum, n_items),
        purchases=_row(items, purchases, np.add, n_items),
        groups=[group],
    )


def _row(items: Any, weights: Any, combine: Any, n_items: int) -> Any:
    """A one-row CSR matrix of the positive `weights` per item, those of the same item
    combined (`np.add` or `np.maximum`) in float32, as `_matrix` builds a person's row."""
    import numpy as np
    import scipy.sparse as sp

    keep = weights > 0
    columns, at = np.unique(items[keep], return_inverse=True)
    values = np.zeros(len(columns), dtype=np.float32)
    combine.at(values, at, weights[keep].astype(np.float32))
    return sp.csr_matrix(
        (values, columns.astype(np.int32), np.array([0, len(columns)], dtype=np.int32)),
        shape=(1, n_items),
    )
