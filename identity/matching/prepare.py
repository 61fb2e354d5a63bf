"""Prepared records: normalized columns, computed once per distinct value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jellyfish
import numpy as np
import pandas as pd

from identity.matching.fields import ADDRESS_PARTS, DEFAULT_FIELDS, FieldSpec, trait_get
from identity.matching.normalizers import (
    SEPARATOR,
    country_normalize,
    date_normalize,
    email_fold,
    id_normalize,
    is_missing,
    name_canonical,
    name_normalize,
    phone_digits,
    postcode_normalize,
    street_split_folded,
    text_fold,
)

_NORMALIZERS = {
    "first_name": name_normalize,
    "last_name": name_normalize,
    "full_name": text_fold,
    "date": date_normalize,
    "postcode": postcode_normalize,
    "street": text_fold,
    "city": name_normalize,
    "text": text_fold,
    "email": email_fold,
    "phone": phone_digits,
    "id": id_normalize,
    "exact": text_fold,
}


def _encode(table: np.ndarray, raw_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, codes (-1 for "") and distinct values, from a table of mapped values indexed
    by `raw_codes` (whose -1 picks the table's last entry)."""
    norm_codes, uniques = _factorize(table)
    codes = norm_codes[raw_codes].astype(np.int32)
    empty: Any = np.nonzero(uniques == "")[0] if len(uniques) else []
    if len(empty):
        codes[codes == empty[0]] = -1
    uniques = np.asarray(uniques, dtype=object)
    values = np.append(uniques, "")[codes] if len(uniques) else np.full(len(codes), "", object)
    return values, codes, uniques


def _factorize(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """pd.factorize, in plain Python for a handful of values (one new profile): pandas'
    per-call overhead would dominate there. Missing values get code -1."""
    if len(values) > 32:
        return pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    seen: dict[Any, int] = {}
    codes = np.empty(len(values), dtype=np.int64)
    for position, value in enumerate(values):
        if is_missing(value) and not isinstance(value, str):
            codes[position] = -1
            continue
        codes[position] = seen.setdefault(value, len(seen))
    uniques = np.empty(len(seen), dtype=object)
    uniques[:] = list(seen)
    return codes, uniques


def _column_map(
    values: Sequence[Any] | np.ndarray, fn: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fn over each distinct value only → (values, codes, distinct values)."""
    raw_codes, raw_uniques = _factorize(values)
    table = np.empty(len(raw_uniques) + 1, dtype=object)
    table[: len(raw_uniques)] = [fn(u) for u in raw_uniques]
    table[-1] = fn(None)
    return _encode(table, raw_codes)


class _Columns:
    """The prepared columns being built, with their codes where known (else found later)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.cols: dict[str, np.ndarray] = {}
        self.codes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def map(self, name: str, raw: Sequence[Any] | None, fn: Any) -> None:
        if raw is None:
            raw = [None] * self.size
        values, codes, uniques = _column_map(raw, fn)
        self.cols[name], self.codes[name] = values, (codes, uniques)

    def derive(self, name: str, source: str, fn: Any) -> None:
        """fn over the distinct values of another column ("" stays "")."""
        codes, uniques = self.coded(source)
        table = np.empty(len(uniques) + 1, dtype=object)
        table[: len(uniques)] = [fn(u) if u else "" for u in uniques]
        table[-1] = ""
        values, new_codes, new_uniques = _encode(table, codes)
        self.cols[name], self.codes[name] = values, (new_codes, new_uniques)

    def set(self, name: str, values: np.ndarray) -> None:
        self.cols[name] = values
        self.codes.pop(name, None)

    def coded(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.codes:
            raw_codes, uniques = _factorize(self.cols[name])
            table = np.append(np.asarray(uniques, dtype=object), "")
            _, codes, uniques = _encode(table, raw_codes)
            self.codes[name] = (codes, uniques)
        return self.codes[name]


@dataclass
class Prepared:
    """Normalized columns for a batch of records: `cols[path]` plus derived `cols[path:part]`."""

    fields: tuple[FieldSpec, ...]
    cols: dict[str, np.ndarray]
    size: int
    _codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def take(self, index: np.ndarray) -> Prepared:
        return Prepared(self.fields, {k: v[index] for k, v in self.cols.items()}, len(index))

    def coded(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(codes, distinct values) of a column, codes -1 for "": equality of values is
        equality of codes, and a similarity is computed once per distinct pair of values."""
        if column not in self._codes:
            values = self.cols[column]
            codes, uniques = pd.factorize(values)
            codes = codes.astype(np.int32)
            empty: Any = np.nonzero(uniques == "")[0] if len(uniques) else []
            if len(empty):
                codes[codes == empty[0]] = -1
            self._codes[column] = (codes, np.asarray(uniques, dtype=object))
        return self._codes[column]

    def value(self, path: str, i: int) -> str:
        return str(self.cols[path][i])


def columns_from_traits(
    traits_list: Sequence[Mapping[str, Any]], fields: Sequence[FieldSpec]
) -> dict[str, list[Any]]:
    """Row-wise traits (profile.traits dicts) → column-wise raw values for `records_prepare`."""
    columns: dict[str, list[Any]] = {}
    for spec in fields:
        paths = (
            [f"{spec.path}.{p}" for p in ADDRESS_PARTS] if spec.kind == "address" else [spec.path]
        )
        for path in paths:
            columns[path] = [trait_get(t, path) for t in traits_list]
    return columns


def records_prepare(
    columns: Mapping[str, Sequence[Any]], fields: Sequence[FieldSpec] = DEFAULT_FIELDS
) -> Prepared:
    """Normalize column-wise raw trait values (missing columns count as empty)."""
    fields = tuple(fields)
    size = max((len(v) for v in columns.values()), default=0)
    out = _Columns(size)
    for spec in fields:
        if spec.kind == "address":
            _address_columns(out, spec.path, columns)
        else:
            out.map(spec.path, columns.get(spec.path), _NORMALIZERS[spec.kind])
    first = next((f.path for f in fields if f.kind == "first_name"), None)
    last = next((f.path for f in fields if f.kind == "last_name"), None)
    full = next((f.path for f in fields if f.kind == "full_name"), None)
    if full is not None:
        # "name" fills first/last names where those are missing: first and last token.
        out.derive(f"{full}:first", full, lambda v: name_normalize(v.split()[0]))
        out.derive(
            f"{full}:last", full, lambda v: name_normalize(v.split()[-1]) if " " in v else ""
        )
        for path, token in ((first, f"{full}:first"), (last, f"{full}:last")):
            if path and (out.cols[token] != "").any():
                current = out.cols[path]
                out.set(path, np.where(current == "", out.cols[token], current))
        del out.cols[full]
    if first and last:
        out.set("names:phonetic", _names_key(out.cols[first], out.cols[last]))
        out.set("names:initials", _initials_key(out.cols[first], out.cols[last]))
    for spec in fields:
        p = spec.path
        if spec.kind in ("first_name", "last_name"):
            out.derive(f"{p}:phonetic", p, jellyfish.metaphone)
            out.derive(f"{p}:initial", p, lambda v: v[:1])
            if spec.kind == "first_name":
                out.derive(f"{p}:canonical", p, name_canonical)
        elif spec.kind == "date":
            out.derive(f"{p}:year", p, lambda v: v[:4])
            codes, uniques = out.coded(p)
            for part, (start, stop) in {"y": (0, 4), "m": (4, 6), "d": (6, 8)}.items():
                table = np.array(
                    [int(u[start:stop]) if u else -1 for u in uniques] + [-1], dtype=np.int32
                )
                out.set(f"{p}:{part}", table[codes])
        elif spec.kind == "street":
            out.derive(f"{p}:number", p, lambda v: street_split_folded(v)[0])
            out.derive(f"{p}:name", p, lambda v: street_split_folded(v)[1])
        elif spec.kind == "email":
            out.derive(f"{p}:local", p, lambda v: v.split("@")[0])
            out.derive(f"{p}:digits", p, lambda v: "".join(c for c in v if c.isdigit()) or "-")
        elif spec.kind == "phone":
            out.derive(f"{p}:suffix", p, lambda v: v[-7:])
    prepared = Prepared(fields, out.cols, size)
    prepared._codes.update({k: v for k, v in out.codes.items() if k in out.cols})
    return prepared


def _address_columns(out: _Columns, path: str, columns: Mapping[str, Sequence[Any]]) -> None:
    parts = {"street": text_fold, "city": name_normalize, "postalCode": postcode_normalize}
    parts |= {"state": text_fold, "country": country_normalize}
    for name, fn in parts.items():
        out.map(
            f"{path}:{'postcode' if name == 'postalCode' else name}",
            columns.get(f"{path}.{name}"),
            fn,
        )
    out.derive(f"{path}:street_number", f"{path}:street", lambda v: street_split_folded(v)[0])
    out.derive(f"{path}:street_name", f"{path}:street", lambda v: street_split_folded(v)[1])
    # The whole address, for exact comparison and for showing; "" when nothing locates it.
    street = out.cols[f"{path}:street"]
    joined = _concat(
        [out.cols[f"{path}:{name}"] for name in ("street", "postcode", "city", "state", "country")],
        ", ",
    )
    located = (
        (street != "") | (out.cols[f"{path}:postcode"] != "") | (out.cols[f"{path}:city"] != "")
    )
    whole = joined
    whole[~located] = ""
    out.set(path, whole)


def _names_key(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Both names' phonetic codes in sorted order ("" unless both are known): the same for
    "Ann Smith" and "Smith Ann"."""
    pairs = _concat([first, last], SEPARATOR)

    def key(value: str) -> str:
        a, _, b = (value or "").partition(SEPARATOR)
        if not a or not b:
            return ""
        return SEPARATOR.join(sorted((jellyfish.metaphone(a), jellyfish.metaphone(b))))

    return _column_map(pairs, key)[0]


def _initials_key(first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Both initials in sorted order ("" unless both are known), blind to swapped names."""
    pairs = _concat([first, last], SEPARATOR)

    def key(value: str) -> str:
        a, _, b = (value or "").partition(SEPARATOR)
        return "".join(sorted((a[:1], b[:1]))) if a and b else ""

    return _column_map(pairs, key)[0]


def _concat(columns: Sequence[np.ndarray], separator: str) -> np.ndarray:
    """Element-wise join of string columns."""
    if len(columns[0]) <= 32:
        out = np.empty(len(columns[0]), dtype=object)
        out[:] = [separator.join(parts) for parts in zip(*columns, strict=True)]
        return out
    joined = pd.Series(columns[0], dtype=object)
    for column in columns[1:]:
        joined = joined + separator + pd.Series(column, dtype=object)
    return joined.to_numpy(dtype=object)
