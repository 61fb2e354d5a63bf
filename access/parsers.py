"""The API's parsers. DRF's parser lets through documents that the rest of the stack cannot
hold, and they fail later as 500s (or are stored and break every later read); this one answers
them with a 400 at the first `request.data` access."""

import codecs
import json
import math
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError

# Far deeper than any document the API takes (segment definitions nest 8 groups), and shallow
# enough that serializers, deepcopy and json.dumps, which all recurse, never reach Python's limit.
MAX_DEPTH = 64

# PostgreSQL text and jsonb cannot hold NUL, and a lone surrogate cannot be encoded as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class JSONParser(parsers.JSONParser):
    """Strict JSON: no NaN or Infinity (numbers beyond the float range included), no string
    containing NUL or an unpaired surrogate, at most MAX_DEPTH levels of arrays and objects.

    The stdlib decoder is kept, not orjson, because orjson reads integers beyond 64 bits as
    floats, silently changing them."""

    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
            data = strict_json_loads(text)
        except RecursionError:
            raise ParseError(_too_deep()) from None
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        _check(data)
        return data


def strict_json_loads(text: str) -> Any:
    """json.loads without NaN, Infinity or numbers beyond the float range: no JSON column or
    client reads them back (ValueError, like any other invalid JSON)."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def storable_json_loads(text: str) -> Any:
    """The JSON documents the API's parser takes, for text that arrives another way (a form's
    JSON field): strict numbers, at most MAX_DEPTH deep, no string PostgreSQL cannot hold.
    ValueError saying what is wrong and where (json.JSONDecodeError for bad syntax)."""
    try:
        data = strict_json_loads(text)
    except RecursionError:
        raise ValueError(_too_deep()) from None
    try:
        _check(data)
    except ParseError as error:
        raise ValueError(str(error.detail)) from None
    return data


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _too_deep() -> str:
    return f"JSON parse error - arrays and objects nest at most {MAX_DEPTH} deep."


def _check(data: Any) -> None:
    # Iterative, so checking a document never recurses either; each value carries its JSON
    # pointer, so that the error says where.
    stack = [(data, 0, "")]
    while stack:
        value, depth, pointer = stack.pop()
        if isinstance(value, str):
            _check_string(value, pointer)
            continue
        if isinstance(value, dict | list):
            depth += 1
            if depth > MAX_DEPTH:
                raise ParseError(_too_deep())
            if isinstance(value, dict):
                for key, item in value.items():
                    child = f"{pointer}/{_escaped(key)}"
                    _check_string(key, child)
                    stack.append((item, depth, child))
            else:
                stack.extend((item, depth, f"{pointer}/{i}") for i, item in enumerate(value))


def _escaped(key: str) -> str:
    # RFC 6901; an unstorable character is replaced so that the message itself can be rendered.
    return _UNSTORABLE.sub("?", key.replace("~", "~0").replace("/", "~1"))


def _check_string(value: str, pointer: str) -> None:
    problem = unstorable(value)
    if problem:
        where = f" at {pointer}" if pointer else ""
        raise ParseError(f"JSON parse error - {problem}{where}.")


def unstorable(value: str) -> str | None:
    """What keeps `value` out of PostgreSQL text and jsonb, if anything."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "strings cannot contain NUL (\\u0000)"
    return f"unpaired surrogate \\u{ord(found.group()):04x} in a string"


def _check_fields(data: Any) -> None:
    """A form's keys and values: the same strings reach the same columns as JSON ones (a JSON
    field sent form-encoded is a string too)."""
    for key, values in data.lists():
        for text in (key, *(v for v in values if isinstance(v, str))):
            problem = unstorable(text)
            if problem:
                raise ParseError(f"Form parse error - {problem} in field {_escaped(key)!r}.")


class _StorableFields:
    """Form and multipart bodies: their fields checked after DRF has parsed them."""

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        parsed = super().parse(*args, **kwargs)  # type: ignore[misc]
        # Multipart answers data and files together; a form answers its data alone.
        _check_fields(getattr(parsed, "data", parsed))
        return parsed


class FormParser(_StorableFields, parsers.FormParser):
    pass


class MultiPartParser(_StorableFields, parsers.MultiPartParser):
    pass
