"""A generic search for a subject's identifiers in every table and in the cache.

Erasure uses it twice: to sweep rows that mention the subject outside their profile (events
not yet resolved, quarantined messages), and afterwards to VERIFY that nothing anywhere still
holds an identifier. It walks `apps.get_models()`, so tables that later parts add are covered
without registering anything.

Every text, char and JSON column is compared case-insensitively as text, one pass per table in
primary-key batches. Identifiers shorter than `SHORT` characters (user ids like "42") would match
inside unrelated text, so for those a text column must equal the value and a JSON column must
hold it as a whole JSON string ("42" with its quotes).
"""

import contextlib
import json
import pickle
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.db import connection, models

SHORT = 6
BATCH = 200_000
# Tables whose rows legitimately hold a subject until their work is done: open privacy
# requests (a later request for the same person must keep its subject to be processed).
_OPEN_REQUEST_STATUSES = ("NOT_VERIFIED", "INITIALIZED", "RUNNING")


@dataclass
class ScanHit:
    table: str
    model: str
    column: str
    count: int
    sample_pks: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class _Column:
    name: str
    is_json: bool


def _text_columns(model: type[models.Model]) -> list[_Column]:
    return [
        _Column(f.column, isinstance(f, models.JSONField))
        for f in model._meta.local_concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
        and not f.primary_key
        and f.column is not None
    ]


def _match_sql(column_sql: str, is_json: bool, needle: str) -> tuple[str, list[str]]:
    text = f"LOWER(CAST({column_sql} AS TEXT))"
    lowered = needle.lower()
    strpos = "STRPOS" if connection.vendor == "postgresql" else "INSTR"
    contains = strpos + "({}, %s) > 0"
    if is_json:
        # As JSON text: escaped the way JSON escapes it (quotes, backslashes, unicode kept).
        encoded = json.dumps(lowered, ensure_ascii=False)
        if len(needle) < SHORT:
            return contains.format(text), [encoded]
        return contains.format(text), [encoded[1:-1]]
    if len(needle) < SHORT:
        return f"{text} = %s", [lowered]
    return contains.format(text), [lowered]


_ARE_SPECIAL = set(string.punctuation)


def _are_escape(text: str) -> str:
    # In a Postgres ARE a backslash before a non-alphanumeric character makes it literal.
    return "".join("\\" + c if c in _ARE_SPECIAL else c for c in text)


def _column_condition(column_sql: str, is_json: bool, needles: list[str]) -> tuple[str, list]:
    """One condition per column. On Postgres the long needles are one case-insensitive regex
    alternation, so the column is cast to text and searched once per row."""
    long_needles = [n for n in needles if len(n) >= SHORT]
    parts: list[str] = []
    params: list[str] = []
    if connection.vendor == "postgresql" and long_needles:
        encoded = [
            json.dumps(n.lower(), ensure_ascii=False)[1:-1] if is_json else n.lower()
            for n in long_needles
        ]
        parts.append(f"CAST({column_sql} AS TEXT) ~* %s")
        params.append("|".join(_are_escape(e) for e in encoded))
        needles = [n for n in needles if len(n) < SHORT]
    for needle in needles:
        sql, p = _match_sql(column_sql, is_json, needle)
        parts.append(sql)
        params += p
    return "(" + " OR ".join(parts) + ")", params


def scannable_models() -> list[type[models.Model]]:
    return [
        m
        for m in apps.get_models()
        if m._meta.managed and not m._meta.proxy and not m._meta.swapped and _text_columns(m)
    ]


def scan_model(
    model: type[models.Model],
    needles: Iterable[str],
    *,
    exclude_pks: Iterable[Any] = (),
    all_pks: list[Any] | None = None,
) -> list[ScanHit]:
    """Rows of `model` whose text columns contain one of `needles`; one hit per column.
    With `all_pks`, the primary key of every matching row is appended to it."""
    needles = [n for n in {n for n in needles if n}]
    columns = _text_columns(model)
    if not needles or not columns:
        return []
    qn = connection.ops.quote_name
    table = model._meta.db_table
    pk_col = qn(str(model._meta.pk.column))  # typed optional; a table's primary key has one
    column_conditions = [_column_condition(qn(col.name), col.is_json, needles) for col in columns]
    where = " OR ".join(c for c, _ in column_conditions)
    where_params = [p for _, ps in column_conditions for p in ps]
    extra, extra_params = "", []
    exclude_pks = list(exclude_pks)
    if exclude_pks:
        extra += f" AND {pk_col} NOT IN ({', '.join(['%s'] * len(exclude_pks))})"
        extra_params += exclude_pks
    if model._meta.label == "consent.PrivacyRequest":
        extra += f" AND {qn('status')} NOT IN ({', '.join(['%s'] * len(_OPEN_REQUEST_STATUSES))})"
        extra_params += list(_OPEN_REQUEST_STATUSES)
    select = ", ".join(f"CASE WHEN {c} THEN 1 ELSE 0 END" for c, _ in column_conditions)
    select_params = where_params

    counts = [0] * len(columns)
    samples: list[list[Any]] = [[] for _ in columns]
    numeric_pk = isinstance(model._meta.pk, models.AutoField | models.BigAutoField)
    with connection.cursor() as cursor:
        ranges: Iterator[tuple[str, list[Any]]]
        if numeric_pk:
            cursor.execute(f"SELECT MIN({pk_col}), MAX({pk_col}) FROM {qn(table)}")  # noqa: S608
            low, high = cursor.fetchone()
            ranges = (
                (f" AND {pk_col} >= %s AND {pk_col} < %s", [start, start + BATCH])
                for start in (range(low, high + 1, BATCH) if low is not None else ())
            )
        else:
            ranges = iter([("", [])])
        for range_sql, range_params in ranges:
            cursor.execute(
                f"SELECT {pk_col}, {select} FROM {qn(table)} "  # noqa: S608
                f"WHERE ({where}){extra}{range_sql}",
                select_params + where_params + extra_params + range_params,
            )
            for row in cursor.fetchall():
                if all_pks is not None:
                    all_pks.append(row[0])
                for i, flag in enumerate(row[1:]):
                    if flag:
                        counts[i] += 1
                        if len(samples[i]) < 5:
                            samples[i].append(row[0])
    return [
        ScanHit(
            table=table,
            model=model._meta.label,
            column=col.name,
            count=counts[i],
            sample_pks=samples[i],
        )
        for i, col in enumerate(columns)
        if counts[i]
    ]


# --- artifacts and files -------------------------------------------------------------------

# zlib's header bytes (deflate, any level): a compressed artifact is searched decompressed.
_ZLIB_HEADERS = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
_FILE_CHUNK = 1 << 20


def _byte_needles(needles: Iterable[str]) -> list[bytes]:
    """Lowercased needles as a pickle holds them (UTF-8) and as a numpy string array does
    (UTF-32). Short ids are left out as in the cache: they would match inside any binary."""
    long_needles = [n.lower() for n in needles if n and len(n) >= SHORT]
    return [n.encode() for n in long_needles] + [n.encode("utf-32-le") for n in long_needles]


def _binary_columns(model: type[models.Model]) -> list[str]:
    return [
        f.column
        for f in model._meta.local_concrete_fields
        if isinstance(f, models.BinaryField) and f.column is not None
    ]


def scan_artifacts(needles: Iterable[str]) -> list[ScanHit]:
    """Binary columns (trained model artifacts: joblib pickles, zlib-compressed or not) that
    hold one of `needles`, searched in their decompressed bytes; one hit per column."""
    import zlib

    wanted = _byte_needles(needles)
    if not wanted:
        return []
    hits: list[ScanHit] = []
    for model in apps.get_models():
        if not model._meta.managed or model._meta.proxy:
            continue
        for column in _binary_columns(model):
            field_name = next(
                f.name for f in model._meta.local_concrete_fields if f.column == column
            )
            matching: list[Any] = []
            rows = model._default_manager.exclude(**{f"{field_name}__isnull": True})
            for pk, raw in rows.values_list("pk", field_name).iterator(chunk_size=20):
                data = bytes(raw)
                if data[:2] in _ZLIB_HEADERS:
                    # Not compressed after all: searched as it is.
                    with contextlib.suppress(zlib.error):
                        data = zlib.decompress(data)
                data = data.lower()
                if any(n in data for n in wanted):
                    matching.append(pk)
            if matching:
                hits.append(
                    ScanHit(
                        table=model._meta.db_table,
                        model=model._meta.label,
                        column=column,
                        count=len(matching),
                        sample_pks=matching[:5],
                    )
                )
    return hits


def scan_files(needles: Iterable[str], *, exclude: Iterable[str] = ()) -> list[str]:
    """Paths (relative to MEDIA_ROOT) of stored files that hold one of `needles`: exports,
    uploads waiting to be imported, anything an app keeps there. Read in chunks that overlap
    by the longest needle, so a match across a chunk boundary is found too."""
    from pathlib import Path

    from django.conf import settings

    wanted = _byte_needles(needles)
    root = Path(settings.MEDIA_ROOT)
    if not wanted or not root.is_dir():
        return []
    skipped = {str(Path(p)) for p in exclude}
    overlap = max(len(n) for n in wanted) - 1
    found: list[str] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = str(path.relative_to(root))
        if relative in skipped:
            continue
        tail = b""
        with path.open("rb") as handle:
            while chunk := handle.read(_FILE_CHUNK):
                window = tail + chunk.lower()
                if any(n in window for n in wanted):
                    found.append(relative)
                    break
                tail = window[-overlap:] if overlap else b""
    return found


# --- cache ---------------------------------------------------------------------------------


def _cache_entries() -> Iterator[tuple[Any, str, bytes]]:
    """(raw key, readable key, value bytes) of every entry of the default cache."""
    # The backends' own stores: Django's cache API has no way to list entries.
    backend: Any = getattr(cache, "_cache", None)
    if hasattr(backend, "get_client"):  # Django's RedisCache
        client = backend.get_client(write=False)
        prefix_pattern = cache.make_key("*")
        for raw_key in client.scan_iter(match=prefix_pattern, count=1000):
            value = client.get(raw_key)
            if value is None:
                continue
            key = raw_key.decode("utf-8", "replace") if isinstance(raw_key, bytes) else raw_key
            yield raw_key, key, value if isinstance(value, bytes) else str(value).encode()
    elif isinstance(backend, dict):  # LocMemCache stores pickles in a dict
        for key, value in list(backend.items()):
            yield key, key, value if isinstance(value, bytes) else pickle.dumps(value)


def _cache_delete(raw_keys: list[Any]) -> None:
    if not raw_keys:
        return
    backend: Any = getattr(cache, "_cache", None)
    if hasattr(backend, "get_client"):
        backend.get_client(write=True).delete(*raw_keys)
    else:
        for key in raw_keys:
            backend.pop(key, None)
            getattr(cache, "_expire_info", {}).pop(key, None)


def _profile_key_pattern(profile_ids: Iterable[int]) -> re.Pattern | None:
    ids = [str(i) for i in profile_ids]
    if not ids:
        return None
    return re.compile(r"profile[:_\-/](?:" + "|".join(ids) + r")(?!\d)", re.IGNORECASE)


def _cache_matches(needles: Iterable[str], profile_ids: Iterable[int]) -> Iterator[tuple[Any, str]]:
    """(raw key, readable key) of cache entries whose key or value holds a needle, or whose
    key names one of the profiles (the convention: a key about a profile contains
    `profile:<id>`)."""
    # Short ids ("42") would match inside any pickle; those entries are found by profile key.
    lowered = _byte_needles(needles)
    pattern = _profile_key_pattern(profile_ids)
    for raw, key, value in _cache_entries():
        haystack = key.lower().encode() + b"\x00" + value.lower()
        if any(n in haystack for n in lowered) or (pattern and pattern.search(key)):
            yield raw, key


def scan_cache(needles: Iterable[str], *, profile_ids: Iterable[int] = ()) -> list[str]:
    """Keys of cache entries that hold the subject (`_cache_matches`)."""
    return [key for _, key in _cache_matches(needles, profile_ids)]


def cache_erase(needles: Iterable[str], *, profile_ids: Iterable[int] = ()) -> int:
    """Delete the cache entries that hold the subject (`_cache_matches`); returns how many."""
    doomed = [raw for raw, _ in _cache_matches(needles, profile_ids)]
    _cache_delete(doomed)
    return len(doomed)
