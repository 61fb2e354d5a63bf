"""Content similarity: TF-IDF over each item's title, description, category, brand and
attribute values (scikit-learn), so an item nobody has touched yet is still reachable: from
the items a person had, and on its neighbours' item pages. Only each item's `neighbours`
most similar items are kept (a sparse items x items matrix)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from recommendations.recommenders.base import (
    Histories,
    Reason,
    Recommender,
    TrainingData,
    strongest_contributor,
    strongest_contributors,
)


class ContentTfidf(Recommender):
    name = "content"

    def __init__(self, *, neighbours: int = 50, min_similarity: float = 0.05) -> None:
        self.params = {"neighbours": neighbours, "min_similarity": min_similarity}
        self.similarity: Any = None
        self.texts = ""  # hash of the item texts `similarity` was computed from

    def fit(self, data: TrainingData) -> ContentTfidf:
        # Item texts do not change with the interactions' window: the hybrid's validation fit
        # and its final fit share one computation.
        texts = hashlib.sha256("\x00".join(data.item_text).encode()).hexdigest()
        if self.similarity is None or texts != self.texts:
            self.similarity = item_similarity(
                data.item_text, self.params["neighbours"], self.params["min_similarity"]
            )
            self.texts = texts
        return self

    def scores(self, users: Histories) -> Any:
        import numpy as np

        return np.asarray((users.strongest @ self.similarity).todense())

    def similar_items(self, item: int, k: int = 10) -> list[tuple[int, float]]:
        import numpy as np

        row = self.similarity[item]
        order = np.argsort(-row.data)[:k]
        return [(int(row.indices[i]), float(row.data[i])) for i in order]

    def explain(self, users: Histories, row: int, item: int) -> Reason:
        column = self.similarity[:, item].toarray().ravel()
        source = strongest_contributor(users.strongest[row], column)
        return Reason("similar_to", item=source) if source is not None else Reason("recommended")

    def explain_many(self, users: Histories, row: int, items: Sequence[int]) -> list[Reason]:
        return [
            Reason("similar_to", item=source) if source is not None else Reason("recommended")
            for source in strongest_contributors(users.strongest[row], self.similarity, items)
        ]


def item_similarity(texts: list[str], neighbours: int, min_similarity: float) -> Any:
    """Items x items cosine similarity of TF-IDF vectors, each row cut to its `neighbours`
    best (itself excluded) above `min_similarity`."""
    import numpy as np
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    if n == 0 or not any(t.strip() for t in texts):
        return sp.csr_matrix((n, n), dtype=np.float32)
    vectors = TfidfVectorizer(
        sublinear_tf=True, ngram_range=(1, 2), min_df=1, max_features=100_000
    ).fit_transform([t or "" for t in texts])
    rows, cols, values = [], [], []
    for start in range(0, n, 1000):
        block = (vectors[start : start + 1000] @ vectors.T).toarray()
        for offset, row in enumerate(block):
            item = start + offset
            row[item] = 0.0
            best = np.argpartition(-row, min(neighbours, n - 1) - 1)[:neighbours] if n > 1 else []
            for other in best:
                if row[other] >= min_similarity:
                    rows.append(item)
                    cols.append(other)
                    values.append(row[other])
    return sp.csr_matrix((values, (rows, cols)), shape=(n, n), dtype=np.float32)
