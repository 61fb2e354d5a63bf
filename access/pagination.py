"""Keyset ("cursor") pagination for the management API, answering `{"results": [...], "next"}`.

The cursor carries the sort key of the last row served, and the next page is "rows strictly
after that key". Unlike offsets (or DRF's position-plus-offset cursor), rows inserted while a
client pages through never shift, duplicate or hide a row. The ordering must end with a unique
field (the primary key) and name only non-null fields.

A view sets `cursor_ordering`, e.g. `("-timestamp", "-id")`; the default is `("-id",)`.
"""

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class KeysetPagination(BasePagination):
    default_ordering: tuple[str, ...] = ("-id",)
    page_size = 50
    max_page_size = 200
    cursor_query_param = "cursor"
    limit_query_param = "limit"

    def paginate_queryset(
        self, queryset: QuerySet, request: Request, view: Any = None
    ) -> list[Model]:
        self.request = request
        ordering = tuple(getattr(view, "cursor_ordering", self.default_ordering))
        limit = self._limit(request)
        queryset = queryset.order_by(*ordering)
        raw_cursor = request.query_params.get(self.cursor_query_param)
        if raw_cursor:
            values = self._decode(raw_cursor, queryset.model, ordering)
            queryset = queryset.filter(_after(ordering, values))
        rows = list(queryset[: limit + 1])
        self.next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            self.next_cursor = _encode([_field_value(last, name.lstrip("-")) for name in ordering])
        return rows

    def get_next_link(self) -> str | None:
        if self.next_cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, self.next_cursor)

    def get_paginated_response(self, data: list) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {
                "results": schema,
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "URL of the next page; null on the last page.",
                },
            },
        }

    def get_schema_operation_parameters(self, view: Any) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "description": "Opaque cursor from a previous page's `next` URL.",
                "schema": {"type": "string"},
            },
            {
                "name": self.limit_query_param,
                "in": "query",
                "required": False,
                "description": f"Page size, 1 to {self.max_page_size} (default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]

    def _limit(self, request: Request) -> int:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return self.page_size
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= self.max_page_size:
            raise ValidationError(
                {self.limit_query_param: [f"Must be an integer from 1 to {self.max_page_size}."]}
            )
        return limit

    def _decode(self, raw: str, model: type[Model], ordering: tuple[str, ...]) -> list[Any]:
        error = ValidationError({self.cursor_query_param: ["Invalid cursor."]})
        try:
            values = json.loads(base64.urlsafe_b64decode(raw.encode("ascii") + b"=="))
        except (ValueError, UnicodeError, binascii.Error):
            raise error from None
        if not isinstance(values, list) or len(values) != len(ordering):
            raise error
        parsed = []
        for name, value in zip(ordering, values, strict=True):
            if not isinstance(value, str | int):
                raise error
            try:
                value = model._meta.get_field(name.lstrip("-")).to_python(value)
                if isinstance(value, datetime):
                    # Cursors we issue always carry an offset. In UTC, as the database
                    # compares it, a time near year 1 or 9999 can leave the datetime range,
                    # and PostgreSQL refuses offsets beyond 15:59 though Python allows 23:59.
                    if value.tzinfo is None:
                        raise ValueError("naive datetime")
                    value = value.astimezone(UTC)
            except (DjangoValidationError, ValueError, TypeError, OverflowError):
                raise error from None
            # SQLite cannot bind an integer beyond 64 bits.
            if value is None or (isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX):
                raise error
            parsed.append(value)
        return parsed


def _field_value(row: Model, name: str) -> Any:
    value = getattr(row, name)
    return value.isoformat() if hasattr(value, "isoformat") else value


def _encode(values: list[Any]) -> str:
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _after(ordering: tuple[str, ...], values: list[Any]) -> Q:
    """Rows strictly after `values` in `ordering`: (a, b) after (x, y) is a > x or (a = x and
    b > y), with > read as < for descending fields."""
    condition = Q()
    for index, name in enumerate(ordering):
        field = name.lstrip("-")
        op = "lt" if name.startswith("-") else "gt"
        step = Q(**{f"{field}__{op}": values[index]})
        for prior_name, prior_value in zip(ordering[:index], values[:index], strict=True):
            step &= Q(**{prior_name.lstrip("-"): prior_value})
        condition |= step
    return condition
