"""Request bodies: gzip (bounded), size limits after decompression, JSON with line/column errors."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from django.conf import settings

from profiles.ingestion.errors import (
    MalformedBodyError,
    PayloadTooLargeError,
)

# --- Body parsing -------------------------------------------------------------------------------


def _gunzip_bounded(raw: bytes, *, limit: int) -> bytes:
    """Decompress gzip/zlib data (several gzip members too), never producing more than limit+1
    bytes, so a small "zip bomb" costs us no memory."""
    out = bytearray()
    data = raw
    while data:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        try:
            out += decompressor.decompress(data, limit + 1 - len(out))
        except zlib.error as exc:
            raise MalformedBodyError(
                f"body: not valid gzip data ({exc})", code="invalid_encoding"
            ) from exc
        if len(out) > limit or decompressor.unconsumed_tail:
            raise PayloadTooLargeError(
                f"request body larger than {limit // 1024} KB once decompressed"
            )
        if not decompressor.eof:
            raise MalformedBodyError("body: truncated gzip data", code="invalid_encoding")
        data = decompressor.unused_data
    return bytes(out)


def ingest_body_parse(raw: bytes, *, content_encoding: str = "") -> Any:
    """The JSON document in a request body, whatever its content type, gzip or not.

    Limits apply after decompression: larger than settings.INGEST_MAX_REQUEST_BYTES raises
    PayloadTooLargeError (413); bad JSON raises MalformedBodyError naming line and column.
    """
    limit = settings.INGEST_MAX_REQUEST_BYTES
    if raw[:2] == b"\x1f\x8b" or (
        "deflate" in content_encoding.lower() and raw[:1] in (b"\x78", b"\x58")
    ):
        raw = _gunzip_bounded(raw, limit=limit)
    if len(raw) > limit:
        raise PayloadTooLargeError(f"request body larger than {limit // 1024} KB")
    if not raw.strip():
        raise MalformedBodyError("body: empty, expected a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedBodyError(
            f"body: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc
