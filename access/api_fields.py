"""Serializer fields and query parameters that validate exactly what the OpenAPI schema says
(tests/cdp/test_api_fuzz.py holds every operation to its schema in both directions)."""

import re
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiParameter, extend_schema_field
from rest_framework import serializers

from access.outbound import MAX_URL_LENGTH, URL_SCHEMA, outbound_url_validator


class JsonBooleanField(serializers.BooleanField):
    """A JSON `true` or `false`, nothing else: DRF's BooleanField also takes 0, 1, "yes",
    "on"..., which the schema's `boolean` does not allow."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)
        raise AssertionError("unreachable")  # fail() raises


# White space as Python's `\s` and str.strip() see it, and anything else. Spelt out for the
# schema's patterns: request generators read `\s` as JavaScript does, without \x1c-\x1f, \x85.
WHITE_SPACE = r"[\s\x1c-\x1f\x85]"
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"


class _JsonStringOnly:
    """A JSON string, nothing else: DRF's CharField also takes numbers (0 becomes "0"), which
    the schema's `string` does not allow."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class JsonStringField(_JsonStringOnly, serializers.CharField):
    """A JSON string; unless blank is allowed, one with a character other than whitespace, as
    the schema's `pattern` says (DRF trims it first, so "\\f" alone is blank: refused)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not self.allow_blank:
            # drf-spectacular documents a RegexValidator as the field's `pattern`.
            self.validators.append(RegexValidator(NOT_BLANK))


@extend_schema_field(URL_SCHEMA)
class OutboundUrlField(_JsonStringOnly, serializers.CharField):
    """A URL the platform will call (access.outbound: its form, and a host that resolves to
    public addresses only). Not trimmed: what is saved is what is called. With `checked=False`
    the caller's service checks it (and names the field at fault its own way)."""

    def __init__(self, *, checked: bool = True, **kwargs: Any) -> None:
        if checked:
            kwargs.setdefault("validators", []).append(outbound_url_validator)
        super().__init__(trim_whitespace=False, max_length=MAX_URL_LENGTH, **kwargs)


@extend_schema_field({"anyOf": [URL_SCHEMA, {"type": "string", "maxLength": 0}]})
class OutboundUrlOrBlankField(OutboundUrlField):
    """An OutboundUrlField that may be blank: none."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_blank=True, **kwargs)


class JsonSlugField(_JsonStringOnly, serializers.SlugField):
    pass


# Ids are bigints; beyond that PostgreSQL would only find nothing, but SQLite cannot bind them.
MAX_ID = 2**63 - 1

# A non-negative amount with at most 12 digits before the point and 2 after, as a string
# (DecimalField(max_digits=14, decimal_places=2, min_value=0)).
AMOUNT_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,2})?$"


@extend_schema_field({"type": "string", "pattern": AMOUNT_PATTERN})
class AmountField(serializers.DecimalField):
    """A non-negative amount written exactly as `AMOUNT_PATTERN` says: DRF's DecimalField also
    reads " 1", "1e2" and "-", which the pattern (and drf-spectacular's own) let through or
    refuse differently."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_digits=14, decimal_places=2, min_value=0, **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str) or not re.fullmatch(AMOUNT_PATTERN[1:-1], data):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"type": "object", "additionalProperties": True})
class JsonObjectField(serializers.JSONField):
    """A JSON object, as the schema's `type: object` says: DRF's JSONField takes any JSON
    value (a list, a string, a number)."""

    default_error_messages = {"not_object": "Must be a JSON object."}

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            self.fail("not_object")
        return super().to_internal_value(data)


def query_flag(request: Any, name: str) -> bool:
    """A boolean query parameter as OpenAPI writes one: `true` or `false` (absent or empty:
    false); anything else is a 400 naming the parameter."""
    from rest_framework.exceptions import ValidationError

    values = request.query_params.getlist(name)
    if len(values) > 1:  # the schema's parameter is one boolean, not a list
        raise ValidationError({name: ["give it once"]})
    value = values[0] if values else ""
    if value not in ("", "true", "false"):
        raise ValidationError({name: [f"must be true or false, not {value!r}"]})
    return value == "true"


def query_whole_number(
    request: Any, name: str, *, default: int, minimum: int, maximum: int | None = None
) -> int:
    """A whole-number query parameter within its bounds (absent or empty: the default);
    anything else is a 400 naming the parameter, rather than silently the default."""
    from rest_framework.exceptions import ValidationError

    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: [f"must be a whole number, got {raw!r}"]}) from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"from {minimum}" + (f" to {maximum}" if maximum is not None else "")
        raise ValidationError({name: [f"must be {bounds}"]})
    return value


def limit_parameter(*, maximum: int, default: int) -> OpenApiParameter:
    """The `limit` query parameter as the API checks it: a whole number from 1 to `maximum`."""
    return OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": maximum, "default": default},
        description=f"How many to return (1 to {maximum}, default {default}).",
    )


_STRING_KEYWORDS = ("maxLength", "minLength", "pattern", "format")
# JSON Schema keywords that OpenAPI 3.0's schema objects do not have.
_NOT_IN_OPENAPI_30 = ("$schema", "errorMessage", "title", "propertyNames")


def openapi_30(schema: Any) -> Any:
    """A JSON Schema (draft-07 or 2020-12, as the validators use it) as an OpenAPI 3.0 schema
    object: type lists become `anyOf` (with `nullable`), numeric exclusive bounds become
    OpenAPI's boolean ones, and keywords OpenAPI does not know are dropped."""
    if isinstance(schema, list):
        return [openapi_30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: openapi_30(value) for key, value in schema.items() if key not in _NOT_IN_OPENAPI_30}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: openapi_30(v) for k, v in schema["properties"].items()}
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(exclusive)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[bound], out[exclusive] = value, True
    types = out.get("type")
    if isinstance(types, list):
        kinds = [t for t in types if t != "null"]
        if "null" in types:
            out["nullable"] = True
        strings = {k: out.pop(k) for k in _STRING_KEYWORDS if k in out}
        if len(kinds) == 1:
            out["type"] = kinds[0]
            if kinds[0] == "string":
                out.update(strings)
        else:
            del out["type"]
            out["anyOf"] = [{"type": t, **(strings if t == "string" else {})} for t in kinds]
    return out


def json_document_field(
    *, schema: dict[str, Any], component_name: str | None, **kwargs: Any
) -> serializers.JSONField:
    """A JSON document field, documented by the JSON Schema its validator checks it with (as an
    OpenAPI component): the schema is the validator's own, never a copy, so the two agree."""

    @extend_schema_field(openapi_30(schema), component_name=component_name)
    class DocumentField(serializers.JSONField):
        pass

    return DocumentField(**kwargs)
