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

HYBRID_COMPONENTS: dict[str, Any] = {
    "ease": EASE,
    "als": ImplicitALS,
    "content": ContentTfidf,
    "popularity": RecentPopularity,
    "trending": Trending,
}


def hybrid(**params: Any) -> Hybrid:
    return Hybrid({name: make() for name, make in HYBRID_COMPONENTS.items()}, **params)


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


def _params(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties}


def _number(low: float, high: float) -> dict[str, Any]:
    return {"type": "number", "minimum": low, "maximum": high}


def _integer(low: int, high: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high}


_DAYS = _number(0.01, 3650)
_WEIGHT = _number(0, 100)
# What a training run may override, per kind (JSON Schema; the API documents it): the
# constructor's keyword arguments, each within a range that trains in bounded time and memory.
PARAMS_SCHEMAS: dict[str, dict[str, Any]] = {
    "hybrid": _params(
        validation_days=_DAYS,
        content_floor=_number(0, 1),
        # Given, the blend weights are used as they are (not tuned).
        weights=_params(**{name: _WEIGHT for name in HYBRID_COMPONENTS}),
    ),
    "ease": _params(
        l2=_number(0.01, 1_000_000), max_items=_integer(1, 50_000), neighbours=_integer(1, 10_000)
    ),
    "als": _params(
        factors=_integer(1, 1024),
        regularization_per_1000=_number(0, 10_000),
        alpha=_number(0.01, 1000),
        iterations=_integer(1, 200),
        random_state=_integer(0, 2**32 - 1),
    ),
    "content": _params(neighbours=_integer(1, 10_000), min_similarity=_number(0, 1)),
    "popularity": _params(days=_DAYS, group_weight=_WEIGHT, first_weight=_WEIGHT),
    "trending": _params(days=_DAYS, baseline_days=_DAYS, group_weight=_WEIGHT),
    "buy_again": _params(
        recent_days=_DAYS, recent_weight=_WEIGHT, tune={"type": "boolean"}, validation_days=_DAYS
    ),
}


class InvalidParams(ValueError):
    pass


def params_check(kind: str, params: dict[str, Any]) -> None:
    """Raise InvalidParams saying where, when `params` are not what PARAMS_SCHEMAS[kind] takes."""
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(PARAMS_SCHEMAS[kind]).iter_errors(params)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise InvalidParams(f"{where + ': ' if where else ''}{error.message}")


def build(kind: str, params: dict[str, Any] | None = None) -> Recommender:
    if kind not in KINDS:
        raise UnknownKind(f"unknown recommender {kind!r}; known: {', '.join(KINDS)}")
    model: Recommender = KINDS[kind](**(params or {}))
    return model


__all__ = [
    "KINDS",
    "PARAMS_SCHEMAS",
    "Histories",
    "InvalidParams",
    "Reason",
    "Recommender",
    "TrainingData",
    "UnknownKind",
    "build",
    "params_check",
]
