"""Fuzzy matching, the pure core: no ORM, no I/O (STYLE.md rule 11).

Profiles are compared on what they are (names, birthday, address, email, phone, ids), never
on which identifiers created them. The flow:

1. `records_prepare` normalizes a column-wise batch of traits once per *distinct* value
   (names: NFKC, case-fold, accents stripped; postcodes; dates incl. their parts; phonetic
   codes), so a million profiles cost as much as their distinct values.
2. `pairs_compare` turns candidate pairs (from `identity.blocking`) into comparison levels,
   field by field, vectorised with rapidfuzz's `cpdist` (the same Jaro-Winkler and
   Damerau-Levenshtein scores jellyfish gives, computed in C over whole arrays).
3. `Model` holds Fellegi-Sunter m/u probabilities per level: u from random pairs, m and the
   prior from EM over the candidate pairs (no labels), optionally refined from staff decisions
   (`model_refine`). A pair's score is the sum of per-field log2(m/u) weights plus the prior.
4. `pair_explain` gives every field's level, values and weight, so each score is explainable.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jellyfish
import numpy as np
import pandas as pd
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cpdist

# ---------------------------------------------------------------------------------------------
# Normalizers (one value in, one normalized string out; "" means missing)
# ---------------------------------------------------------------------------------------------

_NOT_LETTER = re.compile(r"[^\w\s]|[\d_]", re.UNICODE)
_NOT_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
SEPARATOR = "\x1f"
_MISSING = {"", "null", "none", "nan", "n/a", "-", "unknown"}  # not "na": a surname


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().casefold() in _MISSING


def text_fold(value: Any) -> str:
    """NFKC, case-fold, strip accents (é → e, ß → ss), punctuation to spaces, single spaces."""
    if _is_missing(value):
        return ""
    text = str(value)
    if text.isascii():
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKC", text).casefold()
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    text = _NOT_ALNUM.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def name_normalize(value: Any) -> str:
    """A personal name: folded, digits and punctuation dropped, hyphens and spaces removed
    (so "Lillie-Hinrichs", "lillie hinrichs" and "LillieHinrichs" agree)."""
    folded = text_fold(value)
    return _NOT_LETTER.sub("", folded).replace(" ", "")


def postcode_normalize(value: Any) -> str:
    """Upper-case letters and digits only: "sw1a 1aa" → "SW1A1AA", "2119.0" → "2119"."""
    if _is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value)).upper()
    return _NOT_ALNUM.sub("", text)


def id_normalize(value: Any) -> str:
    """An identifier compared fuzzily (CRM id, national id): letters and digits, folded."""
    if _is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", str(value)).casefold())


def email_fold(value: Any) -> str:
    """Lower-cased, trimmed email; fuzzy comparison only (exact identity has its own rules)."""
    if _is_missing(value):
        return ""
    text = unicodedata.normalize("NFKC", str(value)).strip().casefold()
    return text if "@" in text else ""


def phone_digits(value: Any) -> str:
    """The last nine digits of a phone number: enough to tell people apart, blind to the
    country-code and trunk-prefix variants of the same number."""
    if _is_missing(value):
        return ""
    digits = re.sub(r"\D", "", str(value))
    return digits[-9:] if len(digits) >= 6 else ""


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})"),  # ISO date or datetime
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),  # 19560409
)
_DMY = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})$")


def date_normalize(value: Any) -> str:
    """A date of birth as "YYYYMMDD" ("" when unreadable). Day-first for d/m/y input.
    Out-of-range parts are kept as typed: a typo'd month is still evidence."""
    if _is_missing(value):
        return ""
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            y, m, d = match.groups()
            return f"{int(y):04d}{int(m):02d}{int(d):02d}"
    match = _DMY.match(text)
    if match:
        d, m, y = match.groups()
        return f"{int(y):04d}{int(m):02d}{int(d):02d}"
    return ""


def street_split(value: Any) -> tuple[str, str]:
    """("12a", "main street") from "12A Main Street"; the house number is compared apart."""
    return _street_split_folded(text_fold(value))


_HOUSE_NUMBER = re.compile(r"^(\d+[a-z]?)\s*(.*)$")


def _street_split_folded(folded: str) -> tuple[str, str]:
    match = _HOUSE_NUMBER.match(folded)
    if match:
        return match.group(1), match.group(2).replace(" ", "")
    return "", folded.replace(" ", "")


# A small nickname table: given names that are the same person. Keys and values normalized.
NICKNAMES: dict[str, str] = {
    nick: full
    for full, nicks in {
        "robert": "bob bobby rob robbie bert",
        "william": "bill billy will willy liam",
        "richard": "rick ricky dick rich richie",
        "james": "jim jimmy jamie",
        "john": "jack johnny jon",
        "jonathan": "jon jonny",
        "michael": "mike mikey mick micky",
        "elizabeth": "liz lizzie beth betty eliza libby",
        "margaret": "maggie meg peggy marge",
        "katherine": "kate katie kathy kat kathryn catherine cathy",
        "christopher": "chris kit",
        "christine": "chris chrissy tina",
        "daniel": "dan danny",
        "david": "dave davey",
        "edward": "ed eddie ted ned",
        "thomas": "tom tommy",
        "joseph": "joe joey",
        "charles": "charlie chuck chas",
        "anthony": "tony",
        "nicholas": "nick nicky",
        "matthew": "matt matty",
        "andrew": "andy drew",
        "alexander": "alex sasha xander",
        "alexandra": "alex sandra lexi",
        "benjamin": "ben benny",
        "samuel": "sam sammy",
        "samantha": "sam sammie",
        "stephen": "steve stevie",
        "steven": "steve stevie",
        "patricia": "pat patty trish",
        "patrick": "pat paddy",
        "jennifer": "jen jenny",
        "jessica": "jess jessie",
        "rebecca": "becky becca",
        "victoria": "vicky tori",
        "susan": "sue susie",
        "deborah": "deb debbie",
        "timothy": "tim timmy",
        "gregory": "greg",
        "peter": "pete",
        "frederick": "fred freddie",
        "henry": "harry hank",
        "lawrence": "larry",
        "kimberly": "kim",
        "abigail": "abby",
        "isabella": "bella izzy",
        "isabelle": "izzy belle",
        "joshua": "josh",
        "zachary": "zach zack",
        "nathan": "nate",
        "nathaniel": "nate nat",
        "jacob": "jake",
        "madeline": "maddie",
        "madison": "maddie",
        "olivia": "liv livvy",
        "josephine": "jo josie",
        "eleanor": "ellie nora",
        "dorothy": "dot dottie",
    }.items()
    for nick in nicks.split()
}


def name_canonical(name: str) -> str:
    """The canonical given name for a nickname ("bob" → "robert"), else the name itself."""
    return NICKNAMES.get(name, name)


# ---------------------------------------------------------------------------------------------
# Field set
# ---------------------------------------------------------------------------------------------

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
    # same evidence four times.
    "address": (
        "exact",
        "same_street_same_area",
        "similar_street_same_area",
        "same_postcode",
        "same_city",
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


# ---------------------------------------------------------------------------------------------
# Prepared records: normalized columns, computed once per distinct value
# ---------------------------------------------------------------------------------------------

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
    empty = np.nonzero(uniques == "")[0] if len(uniques) else []
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
        if _is_missing(value) and not isinstance(value, str):
            codes[position] = -1
            continue
        codes[position] = seen.setdefault(value, len(seen))
    uniques = np.empty(len(seen), dtype=object)
    uniques[:] = list(seen)
    return codes, uniques


def _column_map(values: Sequence[Any], fn: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
            empty = np.nonzero(uniques == "")[0] if len(uniques) else []
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
            out.derive(f"{p}:number", p, lambda v: _street_split_folded(v)[0])
            out.derive(f"{p}:name", p, lambda v: _street_split_folded(v)[1])
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
    parts |= {"state": text_fold, "country": text_fold}
    for name, fn in parts.items():
        out.map(
            f"{path}:{'postcode' if name == 'postalCode' else name}",
            columns.get(f"{path}.{name}"),
            fn,
        )
    out.derive(f"{path}:street_number", f"{path}:street", lambda v: _street_split_folded(v)[0])
    out.derive(f"{path}:street_name", f"{path}:street", lambda v: _street_split_folded(v)[1])
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


# ---------------------------------------------------------------------------------------------
# Comparison levels, vectorised over pairs
# ---------------------------------------------------------------------------------------------


# rapidfuzz's worker threads per similarity batch (the scorers release the GIL).
WORKERS = 1


def _similarity(a: Sequence[str], b: Sequence[str], scorer: Any, **kwargs: Any) -> np.ndarray:
    if len(a) == 0:
        return np.zeros(0, dtype=np.float64)
    return cpdist(list(a), list(b), scorer=scorer, workers=WORKERS, **kwargs)


def _bucket(null: np.ndarray, conditions: Sequence[np.ndarray | None]) -> np.ndarray:
    """Level per pair: 0 if null, else the first true condition (1-based), else the last."""
    n = len(null)
    levels = np.full(n, len(conditions) + 1, dtype=np.int8)
    remaining = ~null
    for number, cond in enumerate(conditions, start=1):
        if cond is None:
            continue
        hit = remaining & cond
        levels[hit] = number
        remaining &= ~hit
    levels[null] = 0
    return levels


class _Pairs:
    """Column access for a set of pairs. Within one batch (dedupe) equality is a comparison
    of integer codes and each similarity is computed once per distinct pair of values; across
    batches (one new record against an index) plain strings are compared."""

    def __init__(self, left: Prepared, right: Prepared, li: np.ndarray, ri: np.ndarray) -> None:
        self.left, self.right, self.li, self.ri = left, right, li, ri
        self.same = left is right
        self.n = len(li)

    def codes(self, column: str) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.same:
            return None
        codes, _ = self.left.coded(column)
        return codes[self.li], codes[self.ri]

    def values(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        return self.left.cols[column][self.li], self.right.cols[column][self.ri]

    def present(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        coded = self.codes(column)
        if coded is not None:
            return coded[0] >= 0, coded[1] >= 0
        a, b = self.values(column)
        return a != "", b != ""

    def equal(self, column: str) -> np.ndarray:
        """Both present and equal."""
        coded = self.codes(column)
        if coded is not None:
            return (coded[0] == coded[1]) & (coded[0] >= 0)
        a, b = self.values(column)
        return (a == b) & (a != "")

    def similarity(
        self,
        column: str,
        scorer: Any,
        mask: np.ndarray,
        fill: float,
        other: str | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """scorer(left[column], right[other or column]) where `mask`, `fill` elsewhere."""
        out = np.full(self.n, fill, dtype=np.float64)
        idx = np.nonzero(mask)[0]
        if len(idx) == 0:
            return out
        other = other or column
        if self.same and other == column:
            codes, uniques = self.left.coded(column)
            ca, cb = codes[self.li[idx]].astype(np.int64), codes[self.ri[idx]].astype(np.int64)
            if len(uniques) * 4 < self.left.size:  # few distinct values: dedupe value pairs
                keys = ca * len(uniques) + cb
                inverse, distinct = pd.factorize(keys)
                scores = _similarity(
                    uniques[distinct // len(uniques)],
                    uniques[distinct % len(uniques)],
                    scorer,
                    **kwargs,
                )
                out[idx] = scores[inverse]
                return out
            out[idx] = _similarity(uniques[ca], uniques[cb], scorer, **kwargs)
            return out
        a = self.left.cols[column][self.li[idx]]
        b = self.right.cols[other][self.ri[idx]]
        out[idx] = _similarity(a, b, scorer, **kwargs)
        return out


def _jw(pairs: _Pairs, column: str, mask: np.ndarray, other: str | None = None) -> np.ndarray:
    return pairs.similarity(
        column, JaroWinkler.normalized_similarity, mask, 0.0, other, score_cutoff=0.75
    )


def _osa(pairs: _Pairs, column: str, mask: np.ndarray, cutoff: int) -> np.ndarray:
    # Optimal string alignment: Damerau-Levenshtein where no substring is edited twice, the
    # same as jellyfish's for the one or two typos that matter here, and bit-parallel fast.
    return pairs.similarity(column, OSA.distance, mask, 99.0, score_cutoff=cutoff)


def _compare_field(spec: FieldSpec, pairs: _Pairs, partner: str | None) -> np.ndarray:
    p = spec.path
    has_a, has_b = pairs.present(p)
    null = ~has_a | ~has_b
    exact = pairs.equal(p)
    todo = ~null & ~exact
    kind = spec.kind

    if kind in ("first_name", "last_name"):
        sim = _jw(pairs, p, todo)
        swapped = None
        if partner is not None:
            # Entered the wrong way round: this name is (nearly) the other side's partner name.
            _, partner_b = pairs.present(partner)
            cross = _jw(pairs, p, todo & partner_b & (sim < 0.84), other=partner)
            swapped = cross >= 0.88
        if kind == "first_name":
            can = pairs.equal(f"{p}:canonical") & todo
            conds = [exact, can, sim >= 0.92, sim >= 0.84, swapped]
        else:
            phon = pairs.equal(f"{p}:phonetic") & todo
            conds = [exact, sim >= 0.92, sim >= 0.84, swapped, phon]
        return _bucket(null, conds)
    if kind == "date":
        ya, yb = pairs.values(f"{p}:y")
        ma, mb = pairs.values(f"{p}:m")
        da, db = pairs.values(f"{p}:d")
        swapped = (ya == yb) & (ma == db) & (da == mb)
        dist = _osa(pairs, p, todo & ~swapped, 2)
        return _bucket(null, [exact, swapped, dist <= 1, (ya == yb) & (ma == mb)])
    if kind == "postcode":
        return _bucket(null, [exact, _osa(pairs, p, todo, 2) <= 1])
    if kind == "street":
        same_number = pairs.equal(f"{p}:number")
        sim_name = _jw(pairs, f"{p}:name", todo)
        return _bucket(
            null, [exact, same_number & (sim_name >= 0.88), sim_name >= 0.88, same_number]
        )
    if kind == "address":
        return _compare_address(p, pairs, null, exact, todo)
    if kind in ("city", "text"):
        sim = _jw(pairs, p, todo)
        return _bucket(null, [exact, sim >= 0.92, sim >= 0.8])
    if kind == "email":
        local = pairs.equal(f"{p}:local") & todo
        # A typo keeps the digits: "ann.lee12@" vs "ann.lee21@" are two people's addresses.
        a_digits, b_digits = pairs.values(f"{p}:digits")
        typo = todo & ~local & (a_digits == b_digits)
        return _bucket(null, [exact, local, _osa(pairs, p, typo, 3) <= 2])
    if kind == "phone":
        return _bucket(null, [exact, _osa(pairs, p, todo, 2) <= 1])
    if kind == "id":
        dist = _osa(pairs, p, todo, 3)
        return _bucket(null, [exact, dist <= 1, dist <= 2])
    return _bucket(null, [exact])  # "exact"


def _compare_address(
    p: str, pairs: _Pairs, null: np.ndarray, exact: np.ndarray, todo: np.ndarray
) -> np.ndarray:
    def both(name: str) -> np.ndarray:
        has_a, has_b = pairs.present(f"{p}:{name}")
        return todo & has_a & has_b

    post_dist = _osa(pairs, f"{p}:postcode", both("postcode"), 2)
    city_sim = _jw(pairs, f"{p}:city", both("city"))
    street_a, street_b = pairs.present(f"{p}:street")
    street_both = todo & street_a & street_b
    same_street = pairs.equal(f"{p}:street")
    same_area = (post_dist <= 1) | (city_sim >= 0.9)
    # Street similarity only counts in the same area: computed only there.
    near = street_both & same_area & ~same_street
    street_sim = _jw(pairs, f"{p}:street", near)
    name_a, name_b = pairs.present(f"{p}:street_name")
    same_number = pairs.equal(f"{p}:street_number")
    name_sim = _jw(pairs, f"{p}:street_name", near & same_number & name_a & name_b)
    similar_street = (same_number & ((name_sim >= 0.88) | ~name_a | ~name_b)) | (street_sim >= 0.88)
    same_postcode = pairs.equal(f"{p}:postcode")
    same_city = pairs.equal(f"{p}:city") | (city_sim >= 0.92)
    conds = [
        exact,
        same_street & same_area,
        similar_street & same_area,
        same_postcode,
        same_city,
    ]
    return _bucket(null, conds)


def _partners(fields: Sequence[FieldSpec]) -> dict[str, str]:
    first = next((f.path for f in fields if f.kind == "first_name"), None)
    last = next((f.path for f in fields if f.kind == "last_name"), None)
    if first and last:
        return {first: last, last: first}
    return {}


def pairs_compare(left: Prepared, right: Prepared, li: np.ndarray, ri: np.ndarray) -> np.ndarray:
    """Comparison levels, shape (pairs, compared fields), int8; level 0 means "a side is null"."""
    fields = compared_fields(left.fields)
    li = np.asarray(li, dtype=np.int64)
    ri = np.asarray(ri, dtype=np.int64)
    partners = _partners(fields)
    pairs = _Pairs(left, right, li, ri)
    out = np.zeros((len(li), len(fields)), dtype=np.int8)
    for column, spec in enumerate(fields):
        out[:, column] = _compare_field(spec, pairs, partners.get(spec.path))
    return out


# ---------------------------------------------------------------------------------------------
# Fellegi-Sunter model
# ---------------------------------------------------------------------------------------------

_EPS = 1e-6


@dataclass
class Model:
    """m[f][k] = P(level k of field f | match), u[f][k] = P(level k | non-match), for the
    non-null levels k = 1..K (index 0 is unused: null contributes weight 0)."""

    fields: tuple[FieldSpec, ...]
    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float  # P(match) among candidate pairs
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def compared(self) -> tuple[FieldSpec, ...]:
        return compared_fields(self.fields)

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per level; 0 for the null level."""
        out = []
        for m, u in zip(self.m, self.u, strict=True):
            w = np.log2(np.clip(m, _EPS, 1) / np.clip(u, _EPS, 1))
            w[0] = 0.0
            out.append(w)
        return out

    def prior_weight(self) -> float:
        p = min(max(self.prior, _EPS), 1 - _EPS)
        return math.log2(p / (1 - p))

    def score(self, levels: np.ndarray) -> np.ndarray:
        """Total match weight of each pair (prior included)."""
        total = np.full(len(levels), self.prior_weight(), dtype=np.float64)
        for column, w in enumerate(self.weights()):
            total += w[levels[:, column]]
        return total

    def probability(self, levels: np.ndarray) -> np.ndarray:
        return weight_to_probability(self.score(levels))

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": [{"path": f.path, "kind": f.kind} for f in self.fields],
            "m": [[float(x) for x in m] for m in self.m],
            "u": [[float(x) for x in u] for u in self.u],
            "prior": float(self.prior),
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Model:
        fields = fields_from_config(data["fields"])
        m = [np.asarray(x, dtype=np.float64) for x in data["m"]]
        u = [np.asarray(x, dtype=np.float64) for x in data["u"]]
        compared = compared_fields(fields)
        for spec, mm, uu in zip(compared, m, u, strict=True):
            if len(mm) != len(LEVELS[spec.kind]) + 1 or len(uu) != len(mm):
                raise ValueError(f"model levels do not fit field {spec.path}")
        return cls(fields, m, u, float(data["prior"]), dict(data.get("meta", {})))


def weight_to_probability(weight: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.power(2.0, -np.clip(weight, -60, 60)))


def probability_to_weight(probability: float) -> float:
    p = min(max(probability, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def _level_counts(levels: np.ndarray, n_levels: int, weights: np.ndarray | None) -> np.ndarray:
    counts = np.bincount(levels, weights=weights, minlength=n_levels + 1).astype(np.float64)
    counts[0] = 0.0
    return counts


def _normalized(counts: np.ndarray, smoothing: float) -> np.ndarray:
    counts = counts.copy()
    counts[1:] += smoothing
    counts[0] = 0.0
    total = counts[1:].sum()
    return counts / total if total > 0 else counts


def u_estimate(fields: Sequence[FieldSpec], random_levels: np.ndarray) -> list[np.ndarray]:
    """u from levels of random pairs: nearly all random pairs are non-matches."""
    out = []
    for column, spec in enumerate(compared_fields(fields)):
        k = len(LEVELS[spec.kind])
        counts = _level_counts(random_levels[:, column].astype(np.int64), k, None)
        out.append(_normalized(counts, smoothing=0.5))
    return out


def _m_start(spec: FieldSpec) -> np.ndarray:
    """Default m before (or without) EM: most of a match's mass on "exact", the partial levels
    sharing a little, "else" small, except for contact fields people often have several of."""
    k = len(LEVELS[spec.kind])
    m = np.zeros(k + 1)
    other = 0.3 if spec.kind in ("email", "phone") else 0.04
    if k == 1:
        m[1] = 1.0
        return m
    m[k] = other
    m[1] = 0.8 - (other - 0.04)
    if k > 2:
        m[2:k] = (1 - m[1] - other) / (k - 2)
    else:
        m[1] = 1 - other
    return m


# P(exact agreement) for two different people, by kind: used instead of random pairs when a
# batch is too small to sample non-matches from (a handful of profiles, mostly duplicates).
_U_EXACT = {
    "first_name": 0.01,
    "last_name": 0.003,
    "date": 5e-5,
    "postcode": 1e-3,
    "street": 1e-5,
    "address": 1e-5,
    "city": 0.01,
    "text": 0.01,
    "email": 1e-7,
    "phone": 1e-7,
    "id": 1e-7,
    "exact": 0.1,
}


def u_default(spec: FieldSpec) -> np.ndarray:
    """Default u: exact agreement as rare as `_U_EXACT` says, each partial level 3x likelier
    than exact (but small), the rest "else"."""
    k = len(LEVELS[spec.kind])
    u = np.zeros(k + 1)
    u[1] = _U_EXACT[spec.kind]
    if k > 1:
        u[2:k] = min(3 * u[1], 0.05)
    u[k] = 1 - u[1:k].sum()
    return u


def em_fit(
    fields: Sequence[FieldSpec],
    levels: np.ndarray,
    u: list[np.ndarray],
    *,
    prior: float = 0.1,
    iterations: int = 40,
    fix_u: bool = True,
    tolerance: float = 1e-6,
    exclude: Iterable[str] = (),
) -> Model:
    """Estimate m (and the prior; u too unless `fix_u`) by EM over candidate pairs.

    Without labels: each pair's E-step posterior weighs its levels into m and u; fields are
    conditionally independent given match status (the Fellegi-Sunter assumption). Fields in
    `exclude` (those a blocking rule made agree) are left out: m = u, weight 0, not updated.
    """
    fields = tuple(fields)
    compared = compared_fields(fields)
    skip = {column for column, spec in enumerate(compared) if spec.path in set(exclude)}
    m = [u[c].copy() if c in skip else _m_start(spec) for c, spec in enumerate(compared)]
    u = [x.copy() for x in u]
    lv = levels.astype(np.int64)
    model = Model(fields, m, u, prior)
    history = []
    for _ in range(iterations):
        p = model.probability(lv)
        new_prior = float(p.mean())
        new_m = []
        new_u = []
        for column, spec in enumerate(compared):
            k = len(LEVELS[spec.kind])
            if column in skip:
                new_m.append(model.m[column])
                continue
            new_m.append(_normalized(_level_counts(lv[:, column], k, p), smoothing=1e-3))
            if not fix_u:
                new_u.append(_normalized(_level_counts(lv[:, column], k, 1 - p), 1e-3))
        change = abs(new_prior - model.prior) + max(
            float(np.abs(a - b).max()) for a, b in zip(new_m, model.m, strict=True)
        )
        model = Model(fields, new_m, new_u if not fix_u else model.u, new_prior)
        history.append(change)
        if change < tolerance:
            break
    model.m = [_exact_strongest(mm, uu) for mm, uu in zip(model.m, model.u, strict=True)]
    model.meta = {"em_iterations": len(history), "pairs": len(lv)}
    return model


def prior_estimate(model: Model, levels: np.ndarray, total_pairs: int) -> float:
    """P(match) for a random pair: the fixed point of λ = Σ posterior(λ) / all pairs, over the
    candidate pairs (matches outside them are assumed few: blocking recall is high)."""
    bayes = model.score(levels) - model.prior_weight()  # log2 Bayes factor, prior removed
    factor = np.power(2.0, np.clip(bayes, -60, 60))
    lam = max(len(levels) * 0.1, 1.0) / max(total_pairs, 1)
    for _ in range(100):
        posterior = lam * factor / (1 - lam + lam * factor)
        new = float(posterior.sum()) / max(total_pairs, 1)
        new = min(max(new, 1e-15), 0.5)
        if abs(new - lam) <= 1e-9 * lam:
            break
        lam = new
    return lam


def models_combine(
    fields: Sequence[FieldSpec],
    sessions: Sequence[tuple[Model, set[str], float]],
    u: list[np.ndarray],
) -> Model:
    """One m per field from several EM sessions: the mean of the sessions that estimated it
    (not excluded), weighted by their expected number of matches."""
    compared = compared_fields(fields)
    m = []
    for column, spec in enumerate(compared):
        estimates = [(s.m[column], w) for s, excluded, w in sessions if spec.path not in excluded]
        total = sum(w for _, w in estimates)
        if not estimates or total <= 0:
            m.append(_m_start(spec))
            continue
        m.append(sum(est * w for est, w in estimates) / total)
    m = [_exact_strongest(mm, uu) for mm, uu in zip(m, u, strict=True)]
    return Model(tuple(fields), m, [x.copy() for x in u], 0.5)


def _exact_strongest(m: np.ndarray, u: np.ndarray) -> np.ndarray:
    """An exact agreement is never weaker evidence than a partial one, whatever EM saw (a
    batch whose duplicates all carry a typo in one field would otherwise penalise exact)."""
    ratio = np.clip(m[1:], _EPS, 1) / np.clip(u[1:], _EPS, 1)
    if ratio[0] >= ratio[1:].max(initial=0):
        return m
    m = m.copy()
    m[1] = ratio[1:].max() * max(u[1], _EPS)
    m[0] = 0.0
    return m / m[1:].sum()


def model_refine(
    model: Model, levels: np.ndarray, labels: np.ndarray, *, strength: float = 50.0
) -> Model:
    """Refine m from staff decisions: the level counts of confirmed merges (known matches) are
    added to m, with the EM estimate counting as `strength` pseudo-pairs.

    u stays as estimated from random pairs: rejected suggestions are near misses chosen by the
    matcher, not a sample of non-matches, and counting them would bias u.
    """
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return model
    lv = levels[labels].astype(np.int64)
    new_m = []
    for column, spec in enumerate(model.compared):
        k = len(LEVELS[spec.kind])
        counts = _level_counts(lv[:, column], k, None)
        seen = counts[1:].sum()
        prior_counts = model.m[column] * strength
        new_m.append(_normalized(prior_counts + counts, 1e-6) if seen else model.m[column])
    meta = {**model.meta, "refined_with": int(labels.sum())}
    return Model(model.fields, new_m, model.u, model.prior, meta)


# ---------------------------------------------------------------------------------------------
# Explanation and decision
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldScore:
    path: str
    kind: str
    left: str
    right: str
    level: str
    weight: float


@dataclass(frozen=True)
class Explanation:
    fields: tuple[FieldScore, ...]
    prior_weight: float
    weight: float
    probability: float

    def to_json(self) -> dict[str, Any]:
        return {
            "fields": [f.__dict__ for f in self.fields],
            "prior_weight": round(self.prior_weight, 4),
            "weight": round(self.weight, 4),
            "probability": self.probability,
        }


def pair_explain(model: Model, left: Prepared, right: Prepared, i: int, j: int) -> Explanation:
    """Every compared field's values, level and weight for one pair."""
    levels = pairs_compare(left, right, np.array([i]), np.array([j]))[0]
    weights = model.weights()
    scores = []
    for column, spec in enumerate(model.compared):
        level = int(levels[column])
        label = "null" if level == 0 else LEVELS[spec.kind][level - 1]
        scores.append(
            FieldScore(
                spec.path,
                spec.kind,
                left.value(spec.path, i),
                right.value(spec.path, j),
                label,
                round(float(weights[column][level]), 4),
            )
        )
    total = model.prior_weight() + sum(s.weight for s in scores)
    return Explanation(
        tuple(scores), model.prior_weight(), total, float(weight_to_probability(total))
    )


@dataclass(frozen=True)
class Thresholds:
    """Match probabilities: ≥ merge → merge automatically; ≥ review → queue; else nothing."""

    merge: float = 0.98
    review: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.review <= self.merge < 1 + 1e-12:
            raise ValueError("thresholds need 0 < review ≤ merge ≤ 1")

    def decide(self, probability: np.ndarray) -> np.ndarray:
        """Per pair: 2 = merge, 1 = review, 0 = nothing."""
        p = np.asarray(probability)
        return np.where(p >= self.merge, 2, np.where(p >= self.review, 1, 0)).astype(np.int8)
