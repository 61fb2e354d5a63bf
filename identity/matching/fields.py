"""The field set: which traits are compared, and their comparison levels."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# kind → comparison levels after "null" (level 0, weight 0) — strongest first, "else" last.
LEVELS: dict[str, tuple[str, ...]] = {
    "first_name": (
        "exact",
        "nickname",
        "jaro_winkler>=0.92",
        "jaro_winkler>=0.84",
        "swapped_with_last_name",
        "else",
    ),
    "last_name": (
        "exact",
        "jaro_winkler>=0.92",
        "jaro_winkler>=0.84",
        "swapped_with_first_name",
        "phonetic",
        "else",
    ),
    # "damerau<=1": one slip, but not one digit moving the year by more than a decade.
    "date": ("exact", "day_month_swapped", "damerau<=1", "same_year_month", "else"),
    "postcode": ("exact", "damerau<=1", "else"),
    "street": ("exact", "same_number_similar_name", "similar", "same_number", "else"),
    "city": ("exact", "jaro_winkler>=0.92", "jaro_winkler>=0.8", "else"),
    "text": ("exact", "jaro_winkler>=0.92", "jaro_winkler>=0.8", "else"),
    "email": ("exact", "same_local_part", "typo_same_digits", "else"),
    "phone": ("exact", "damerau<=1", "else"),
    "id": ("exact", "damerau<=1", "damerau<=2", "else"),
    "exact": ("exact", "else"),
    # The postal address as one comparison: street, city, postcode and state are one fact
    # (people at one address agree on all of them), and counting them apart would add up the
    # same evidence four times. A similar street only locates one home with the house number
    # agreeing ("12 Baker St" and "12 Baker Street"); "12" and "14 Baker Street" are
    # neighbours. Two countries outrank every other level: no street name makes them one.
    "address": (
        "exact",
        "same_street_same_area",
        "same_number_similar_street_same_area",
        "similar_street_same_area",
        "same_postcode",
        "same_city",
        "different_country",
        "else",
    ),
}
ADDRESS_PARTS = ("street", "city", "postalCode", "state", "country")
KINDS = (*LEVELS.keys(), "full_name")


@dataclass(frozen=True)
class FieldSpec:
    """One compared trait: its dotted path in the profile's traits and its kind."""

    path: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown field kind {self.kind!r} (known: {', '.join(KINDS)})")


# Segment's reserved traits. `name` only fills first/last names that are missing.
DEFAULT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("firstName", "first_name"),
    FieldSpec("lastName", "last_name"),
    FieldSpec("name", "full_name"),
    FieldSpec("email", "email"),
    FieldSpec("phone", "phone"),
    FieldSpec("birthday", "date"),
    # address.street, address.city, address.postalCode, address.state, address.country
    FieldSpec("address", "address"),
)


def fields_from_config(config: Iterable[Mapping[str, str]] | None) -> tuple[FieldSpec, ...]:
    """[{"path": "firstName", "kind": "first_name"}, ...] → FieldSpecs (ValueError if bad)."""
    if not config:
        return DEFAULT_FIELDS
    specs = []
    for item in config:
        path, kind = str(item.get("path", "")).strip(), str(item.get("kind", "")).strip()
        if not path:
            raise ValueError("every field needs a path")
        specs.append(FieldSpec(path, kind))
    if len({s.path for s in specs}) != len(specs):
        raise ValueError("a field path appears twice")
    return tuple(specs)


def compared_fields(fields: Sequence[FieldSpec]) -> tuple[FieldSpec, ...]:
    return tuple(f for f in fields if f.kind != "full_name")


def trait_get(traits: Mapping[str, Any], path: str) -> Any:
    """traits["address"]["city"] for "address.city"; a flat "address.city" key also counts."""
    if path in traits:
        return traits[path]
    node: Any = traits
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
