"""Implicit-feedback matrix factorisation (ALS, Hu, Koren and Volinsky 2008) with the
`implicit` package. Only the item factors are kept: a person's factors are solved from their
history when they are scored (implicit's `recalculate_user`), which is what makes a new event
count without retraining, and keeps people out of the artifact."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from recommendations.recommenders.base import (
    Histories,
    Reason,
    Recommender,
    TrainingData,
    strongest_contributor,
)


class ImplicitALS(Recommender):
    name = "als"

    def __init__(
        self,
        *,
        factors: int = 64,
        # Per 1,000 people: the data term grows with the people, so a fixed penalty that suits
        # 4,000 customers smothers 60. Chosen on the validation window of UCI Online Retail
        # (factors 32-128, penalty 0.05-50, alpha 1-40; 50 at 4,000 people was best there).
        regularization_per_1000: float = 12.0,
        alpha: float = 10.0,
        iterations: int = 15,
        random_state: int = 42,
    ) -> None:
        self.params = {
            "factors": factors,
            "regularization_per_1000": regularization_per_1000,
            "alpha": alpha,
            "iterations": iterations,
            "random_state": random_state,
        }
        self.model: Any = None

    def fit(self, data: TrainingData) -> ImplicitALS:
        import numpy as np
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        # More factors than an eighth of the items only memorise a small catalog (a generated
        # shop of 24 items in two taste groups came out wrong for 1 person in 7 with 6).
        factors = max(2, min(self.params["factors"], data.n_items // 8))
        # One thread (OpenBLAS too): the ml queue shares small machines; workers scale by
        # processes (two threads made ALS 2.8x slower here).
        with threadpool_limits(limits=1, user_api="blas"):
            model = AlternatingLeastSquares(
                factors=factors,
                regularization=self.params["regularization_per_1000"] * data.n_users / 1000,
                alpha=self.params["alpha"],
                iterations=self.params["iterations"],
                random_state=self.params["random_state"],
                num_threads=1,
                calculate_training_loss=False,
            )
            model.fit(data.matrix("sum"), show_progress=False)
        # Item side only: the people's factors are solved again from their history.
        model.user_factors = np.zeros((0, model.factors), dtype=model.dtype)
        self.model = model
        return self

    def _user_factors(self, users: Histories) -> Any:
        import numpy as np

        return self.model.recalculate_user(np.arange(len(users)), users.weighted)

    def scores(self, users: Histories) -> Any:
        import numpy as np

        if len(users) == 0:
            return np.zeros((0, self.model.item_factors.shape[0]))
        factors = self._user_factors(users)
        scores = factors @ self.model.item_factors.T
        # No history, no opinion: a zero row (the hybrid's popularity then decides).
        scores[np.asarray(users.weighted.getnnz(axis=1)) == 0] = 0.0
        return scores

    def similar_items(self, item: int, k: int = 10) -> list[tuple[int, float]]:
        import numpy as np

        vectors = self.model.item_factors
        norms = np.linalg.norm(vectors, axis=1) + 1e-9
        cosine = vectors @ vectors[item] / (norms * norms[item])
        cosine[item] = -np.inf
        best = np.argsort(-cosine)[:k]
        return [(int(i), float(cosine[i])) for i in best if cosine[i] > 0]

    def explain(self, users: Histories, row: int, item: int) -> Reason:
        history = users.weighted[row]
        if history.nnz == 0:
            return Reason("popular")
        _, contributions, _ = self.model.explain(0, history, item, N=1)
        if contributions:
            return Reason("because", item=int(contributions[0][0]))
        return Reason("because", item=strongest_contributor(history, history.toarray()[0]))

    def explain_many(self, users: Histories, row: int, items: Sequence[int]) -> list[Reason]:
        """`explain` of each item, the person's factorisation computed once for all of them."""
        history = users.weighted[row]
        if history.nnz == 0:
            return [Reason("popular") for _ in items]
        reasons, factorised = [], None
        for item in items:
            _, contributions, factorised = self.model.explain(
                0, history, item, user_weights=factorised, N=1
            )
            source = (
                int(contributions[0][0])
                if contributions
                else strongest_contributor(history, history.toarray()[0])
            )
            reasons.append(Reason("because", item=source))
        return reasons
