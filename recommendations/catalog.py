"""What a valid catalog item is, as plain Python (no ORM): the API, the bulk import and the
items learned from events all clean their input here, so the three agree.

`item_fields_clean(raw, partial=...)` returns the fields to write or raises `InvalidItem`
with the errors per field. `product_fields_from_event(product)` reads one entry of a Segment
e-commerce event's products (or the event's own properties) leniently: what does not parse is
left out instead of refusing the event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import jsonschema

CATEGORY_SEPARATOR = " > "
# The fields a catalog write may set, in the order the API and the CSV template list them.
ITEM_FIELDS = (
    "external_id",
    "title",
    "description",
    "category",
    "brand",
    "price",
    "currency",
    "image_url",
    "url",
    "attributes",
    "availability",
)
AVAILABILITY = ("in_stock", "out_of_stock", "preorder", "discontinued")
MAX_LENGTHS = {
    "external_id": 255,
    "title": 500,
    "description": 20_000,
    "category": 500,
    "brand": 200,
    "image_url": 2000,
    "url": 2000,
    "currency": 16,
    "availability": 32,
}
MAX_PRICE = Decimal("999999999999.99")
MAX_ATTRIBUTES_BYTES = 16 * 1024

# Attributes are facets: names to a string, number, boolean or a list of those (colours).
ATTRIBUTES_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "maxProperties": 100,
    "propertyNames": {"minLength": 1, "maxLength": 100},
    "additionalProperties": {
        "anyOf": [
            {"type": ["string", "number", "boolean"]},
            {
                "type": "array",
                "maxItems": 100,
                "items": {"type": ["string", "number", "boolean"]},
            },
        ]
    },
}
_ATTRIBUTES_VALIDATOR = jsonschema.Draft202012Validator(ATTRIBUTES_SCHEMA)


class InvalidItem(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


def category_path(value: Any) -> str:
    """A category as one path string: a list becomes "A > B", slashes and extra spaces are
    read as separators too ("Home/Kitchen" is "Home > Kitchen")."""
    parts = value if isinstance(value, list) else str(value).replace("/", ">").split(">")
    return CATEGORY_SEPARATOR.join(p.strip() for p in (str(x) for x in parts) if p.strip())


def category_top(category: str) -> str:
    return category.split(CATEGORY_SEPARATOR, 1)[0]


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("Must be a string.")
    text = str(value).strip()
    if "\x00" in text:
        raise ValueError("May not contain NUL.")
    if len(text) > MAX_LENGTHS[name]:
        raise ValueError(f"At most {MAX_LENGTHS[name]} characters.")
    return text


def _url(name: str, value: Any) -> str:
    text = _text(name, value)
    if text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("Must be an http(s) URL.")
    return text


def _price(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("Must be a number.")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("Must be a number.") from None
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise ValueError(f"Must be a number from 0 to {MAX_PRICE}.")
    return price.quantize(Decimal("0.01"))


def _currency(value: Any) -> str:
    text = _text("currency", value).upper()
    if text and (len(text) != 3 or not text.isalpha() or not text.isascii()):
        raise ValueError("Must be a three-letter ISO 4217 code, e.g. EUR.")
    return text


def _attributes(value: Any) -> dict[str, Any]:
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("Must be a JSON object.") from None
    errors = sorted(_ATTRIBUTES_VALIDATOR.iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path)
        raise ValueError(f"{'/' + where + ': ' if where else ''}{first.message}")
    if len(json.dumps(value).encode()) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"At most {MAX_ATTRIBUTES_BYTES} bytes as JSON.")
    return dict(value)


def _availability(value: Any) -> str:
    text = _text("availability", value).lower().replace(" ", "_").replace("-", "_")
    if text not in AVAILABILITY:
        raise ValueError(f"Must be one of {', '.join(AVAILABILITY)}.")
    return text


def _external_id(value: Any) -> str:
    text = _text("external_id", value)
    if not text:
        raise ValueError("Required: the shop's product_id or sku.")
    return text


_CLEANERS = {
    "external_id": _external_id,
    "title": lambda v: _text("title", v),
    "description": lambda v: _text("description", v),
    "category": lambda v: _text("category", category_path(v) if v is not None else ""),
    "brand": lambda v: _text("brand", v),
    "price": _price,
    "currency": _currency,
    "image_url": lambda v: _url("image_url", v),
    "url": lambda v: _url("url", v),
    "attributes": _attributes,
    "availability": _availability,
}
# Names a shop's feed or Segment's spec uses for our fields.
ALIASES = {"product_id": "external_id", "sku": "external_id", "id": "external_id", "name": "title"}


def item_fields_clean(raw: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    """The item fields in `raw`, cleaned; unknown keys are errors. Without `partial`, the
    external id is required (a create); with it, only what is given is checked (a PATCH)."""
    errors: dict[str, list[str]] = {}
    given: dict[str, Any] = {}
    for key, value in raw.items():
        name = ALIASES.get(key, key)
        if name not in _CLEANERS:
            errors[key] = [f"Unknown field. Fields: {', '.join(ITEM_FIELDS)}."]
        elif name in given and key != name and value not in (None, ""):
            continue  # product_id and sku both given: product_id (first) wins
        elif name not in given or value not in (None, ""):
            given[name] = value
    if not partial and "external_id" not in given:
        errors["external_id"] = ["Required: the shop's product_id or sku."]
    cleaned: dict[str, Any] = {}
    for name, value in given.items():
        try:
            cleaned[name] = _CLEANERS[name](value)
        except ValueError as error:
            errors[name] = [str(error)]
    if errors:
        raise InvalidItem(errors)
    return cleaned


# Fields an event may teach: Segment's product properties, under our names.
EVENT_FIELDS = {
    "name": "title",
    "category": "category",
    "brand": "brand",
    "price": "price",
    "currency": "currency",
    "url": "url",
    "image_url": "image_url",
}


def product_external_id(product: Mapping[str, Any]) -> str:
    """The product's id as the catalog keys it: `product_id`, else `sku`; "" without one."""
    for key in ("product_id", "sku"):
        value = product.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            try:
                return _external_id(value)
            except ValueError:
                continue
    return ""


def product_fields_from_event(product: Mapping[str, Any]) -> dict[str, Any]:
    """The catalog fields one product of an event carries; a value that does not clean is
    skipped (an SDK's typo must not hold back the rest)."""
    fields: dict[str, Any] = {}
    for key, name in EVENT_FIELDS.items():
        if key not in product or product[key] in (None, ""):
            continue
        try:
            fields[name] = _CLEANERS[name](product[key])
        except ValueError:
            continue
    return fields
