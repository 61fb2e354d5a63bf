"""The recommenders (see base.py for their contract) and the kinds a training run can name.

`build(kind, params)` makes an unfitted recommender; `params` override the defaults (a
hybrid's are its blend options: its components are always the five below).
"""

from __future__ import annotations

from typing import Any

from recommendations.recommenders.als import ImplicitALS
from recommendations.recommenders.base import Histories, Reason, Recommender, TrainingData
from recommendations.recommenders.buy_again import BuyAgain
from recommendations.recommenders.content import ContentTfidf
from recommendations.recommenders.ease import EASE
from recommendations.recommenders.hybrid import Hybrid
from recommendations.recommenders.popularity import RecentPopularity, Trending


def hybrid(**params: Any) -> Hybrid:
    return Hybrid(
        {
            "ease": EASE(),
            "als": ImplicitALS(),
            "content": ContentTfidf(),
            "popularity": RecentPopularity(),
            "trending": Trending(),
        },
        **params,
    )


KINDS: dict[str, Any] = {
    "hybrid": hybrid,
    "ease": EASE,
    "als": ImplicitALS,
    "content": ContentTfidf,
    "popularity": RecentPopularity,
    "trending": Trending,
    "buy_again": BuyAgain,
}


class UnknownKind(ValueError):
    pass


def build(kind: str, params: dict[str, Any] | None = None) -> Recommender:
    if kind not in KINDS:
        raise UnknownKind(f"unknown recommender {kind!r}; known: {', '.join(KINDS)}")
    model: Recommender = KINDS[kind](**(params or {}))
    return model


__all__ = [
    "KINDS",
    "Histories",
    "Reason",
    "Recommender",
    "TrainingData",
    "UnknownKind",
    "build",
]
