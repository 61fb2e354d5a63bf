"""Business rules, applied after scoring: plain Python, no ORM.

A rule set (versioned: `RuleSet`, the newest serves) holds what marketers decide for every
list; a request adds its own filters. Applied in this order:

1. drop: items out of stock or discontinued; items the slot excludes (what the person bought,
   for `home`, `similar` and `cart`); the current page's item; `bury` items scored below
   everything else (kept only to fill a list that would otherwise be short);
2. filter: category (the path or under it) and brand lists, price band;
3. re-rank: `boost` items; when the request names the current page's category, items of
   that category; and the items of the `context_boosts` whose device and hours match the
   request's (the visitor's device type, and their local hour when the caller gives it: "on
   phones in the evening, lift Gifts"), each multiplied by its factor (scores are positive
   after step 1);
4. diversity: at most `max_per_category` items of one top-level category, as long as enough
   items remain.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import jsonschema

from recommendations.catalog import CATEGORY_SEPARATOR, category_top

# The device types a request and a context boost name (a profile's `context.device.type`).
DEVICES = ("mobile", "tablet", "desktop")

RULES_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "boost": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
        "bury": {"type": "array", "items": {"type": "string"}, "maxItems": 1000},
        "boost_factor": {"type": "number", "minimum": 1, "maximum": 100},
        "exclude_categories": {"type": "array", "items": {"type": "string"}, "maxItems": 200},
        "exclude_brands": {"type": "array", "items": {"type": "string"}, "maxItems": 200},
        "max_per_category": {"type": ["integer", "null"], "minimum": 1, "maximum": 100},
        "context_category_factor": {"type": "number", "minimum": 1, "maximum": 100},
        "context_boosts": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["categories", "factor"],
                "properties": {
                    "device": {"enum": list(DEVICES)},
                    # [from, to): local hours, wrapping past midnight ([20, 2] is 8 pm to 2 am).
                    "hours": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 0, "maximum": 23},
                        "minItems": 2,
                        "maxItems": 2,
                    },
                    "categories": {
                        "type": "array",
                        "items": {"type": "string", "minLength": 1},
                        "minItems": 1,
                        "maxItems": 200,
                    },
                    "factor": {"type": "number", "minimum": 0.01, "maximum": 100},
                },
            },
        },
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(RULES_SCHEMA)


class InvalidRules(ValueError):
    pass


def rules_validate(rules: Any) -> dict[str, Any]:
    errors = sorted(_VALIDATOR.iter_errors(rules), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        raise InvalidRules(f"{'/' + where + ': ' if where else ''}{errors[0].message}")
    return dict(rules)


@dataclass(frozen=True)
class Candidate:
    key: str
    score: float
    category: str = ""
    brand: str = ""
    price: Decimal | None = None
    in_stock: bool = True
    reason: Any = None  # passed through untouched: how the caller words it


@dataclass(frozen=True)
class ContextBoost:
    categories: tuple[str, ...]
    factor: float
    device: str = ""
    hours: tuple[int, int] | None = None

    def applies(self, device: str, hour: int | None) -> bool:
        if self.device and self.device != device:
            return False
        if self.hours is None:
            return True
        if hour is None:
            return False
        start, end = self.hours
        return start <= hour < end if start <= end else hour >= start or hour < end


@dataclass(frozen=True)
class Rules:
    """The rule set's rules plus the request's filters."""

    exclude: frozenset[str] = frozenset()
    boost: frozenset[str] = frozenset()
    bury: frozenset[str] = frozenset()
    boost_factor: float = 1.5
    categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    exclude_brands: tuple[str, ...] = ()
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    max_per_category: int | None = None
    context_category: str = ""
    context_category_factor: float = 1.3
    context_boosts: tuple[ContextBoost, ...] = ()
    device: str = ""  # the request's: one of DEVICES, or "" unknown
    hour: int | None = None  # the visitor's local hour, when the caller gives it

    @classmethod
    def from_rule_set(cls, rules: dict[str, Any], **request: Any) -> Rules:
        return cls(
            boost=frozenset(rules.get("boost", ())),
            bury=frozenset(rules.get("bury", ())),
            boost_factor=float(rules.get("boost_factor", 1.5)),
            exclude_categories=tuple(rules.get("exclude_categories", ())),
            exclude_brands=tuple(rules.get("exclude_brands", ())),
            max_per_category=rules.get("max_per_category"),
            context_category_factor=float(rules.get("context_category_factor", 1.3)),
            context_boosts=tuple(
                ContextBoost(
                    categories=tuple(boost["categories"]),
                    factor=float(boost["factor"]),
                    device=boost.get("device", ""),
                    hours=(boost["hours"][0], boost["hours"][1]) if "hours" in boost else None,
                )
                for boost in rules.get("context_boosts", ())
            ),
            **request,
        )


def _under(category: str, paths: Iterable[str]) -> bool:
    return any(category == p or category.startswith(p + CATEGORY_SEPARATOR) for p in paths)


def rules_apply(candidates: Sequence[Candidate], rules: Rules, k: int) -> list[Candidate]:
    """The k candidates that pass, best first (see the module docstring)."""
    # (score after the rules, candidate): the few returned get their new score at the end,
    # not each of the ~90 candidates a list is chosen from (dataclasses.replace is ~10 us).
    kept: list[tuple[float, Candidate]] = []
    buried: list[tuple[float, Candidate]] = []
    boosts = [b for b in rules.context_boosts if b.applies(rules.device, rules.hour)]
    for c in candidates:
        if not c.in_stock or c.key in rules.exclude:
            continue
        if rules.categories and not _under(c.category, rules.categories):
            continue
        if rules.exclude_categories and _under(c.category, rules.exclude_categories):
            continue
        if rules.brands and c.brand not in rules.brands:
            continue
        if c.brand and c.brand in rules.exclude_brands:
            continue
        if rules.price_min is not None and (c.price is None or c.price < rules.price_min):
            continue
        if rules.price_max is not None and (c.price is None or c.price > rules.price_max):
            continue
        factor = 1.0
        if c.key in rules.boost:
            factor *= rules.boost_factor
        if rules.context_category and _under(c.category, [rules.context_category]):
            factor *= rules.context_category_factor
        for boost in boosts:
            if _under(c.category, boost.categories):
                factor *= boost.factor
        (buried if c.key in rules.bury else kept).append((_positive(c.score) * factor, c))
    kept.sort(key=lambda ranked: -ranked[0])
    buried.sort(key=lambda ranked: -ranked[0])
    chosen = _diverse(kept, rules.max_per_category, k) + buried[: max(0, k - len(kept))]
    return [replace(c, score=score) for score, c in chosen]


def _positive(score: float) -> float:
    # Blended scores can be negative; boosts multiply, so shift them into (0, 1].
    return score if score > 0 else 1e-6 / (1.0 + abs(score))


def _diverse(
    ranked: list[tuple[float, Candidate]], per_category: int | None, k: int
) -> list[tuple[float, Candidate]]:
    if not per_category:
        return ranked[:k]
    counts: dict[str, int] = {}
    chosen, overflow = [], []
    for pair in ranked:
        top = category_top(pair[1].category)
        if top and counts.get(top, 0) >= per_category:
            overflow.append(pair)
            continue
        counts[top] = counts.get(top, 0) + 1
        chosen.append(pair)
        if len(chosen) == k:
            return chosen
    # Not enough variety to fill the list: the best of the rest, rather than a short list.
    return chosen + overflow[: k - len(chosen)]
