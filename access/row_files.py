"""Reading an uploaded CSV or JSON Lines file row by row, with each row's line number.

Bulk imports (the catalog's, the profiles' and events') read their files here, so a row is
numbered, a broken line reported and a file refused the same way everywhere. A row that cannot
be read becomes a `RowError` at its line; the importer reports it and goes on. A file that
cannot be read at all (not UTF-8, an unknown format, a CSV without a header) raises
`ImportFileError`: nothing is imported.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

CSV = "csv"
JSONL = "jsonl"


class ImportFileError(ValueError):
    """The file as a whole cannot be read (unknown columns, not UTF-8...): nothing imported."""


class RowError(ValueError):
    """One row that cannot be read (not JSON, wrong number of cells): reported at its line."""


def import_format(file_name: str) -> str:
    """csv or jsonl from the file's name; raises ImportFileError for anything else."""
    suffix = Path(file_name).suffix.lower()
    if suffix == ".csv":
        return CSV
    if suffix in (".jsonl", ".ndjson"):
        return JSONL
    raise ImportFileError("The file must be .csv or .jsonl (JSON Lines).")


def text_lines(raw: IO[bytes]) -> Iterator[str]:
    for number, line in enumerate(raw, start=1):
        try:
            yield line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            raise ImportFileError(f"Line {number} is not UTF-8 text.") from None


def rows_count(raw: IO[bytes], format: str) -> int:
    """How many non-blank rows (CSV: after the header) the file has."""
    if format == JSONL:
        return sum(1 for line in text_lines(raw) if line.strip())
    reader = csv.reader(text_lines(raw))
    with _csv_errors(reader):
        next(reader, None)
        return sum(1 for row in reader if "".join(row).strip())


def csv_header(raw: IO[bytes]) -> list[str]:
    """The column names of a CSV file's first row, stripped; [] for an empty file."""
    reader = csv.reader(text_lines(raw))
    with _csv_errors(reader):
        return [name.strip() for name in next(reader, [])]


@contextmanager
def _csv_errors(reader: Any) -> Iterator[None]:
    """The csv module's own refusals (a cell over its size limit, a NUL byte) as what they are
    to the uploader: a file that cannot be read, at a line."""
    try:
        yield
    except csv.Error as error:
        raise ImportFileError(f"Line {reader.line_num}: {error}.") from None


def rows_read(raw: IO[bytes], format: str) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line number, row or why it cannot be read) for every non-blank row. A CSV row is
    {column: cell} over the header's columns; a JSONL row is the line's JSON object."""
    if format == JSONL:
        for number, text in enumerate(text_lines(raw), start=1):
            if not text.strip():
                continue
            try:
                row = orjson.loads(text)
            except orjson.JSONDecodeError as error:
                yield number, RowError(f"Not JSON: {error.msg}.")
                continue
            if not isinstance(row, dict):
                yield number, RowError("Must be a JSON object.")
                continue
            yield number, row
        return
    reader = csv.reader(text_lines(raw))
    with _csv_errors(reader):
        header = [name.strip() for name in next(reader, [])]
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not "".join(cells).strip():  # every cell blank, in one C call
                continue
            if len(cells) != len(header):
                yield line, RowError(f"{len(cells)} cells where the header names {len(header)}.")
                continue
            yield line, dict(zip(header, cells, strict=True))
