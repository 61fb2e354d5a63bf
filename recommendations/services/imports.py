"""Bulk catalog imports from CSV or JSON Lines, run by a worker with progress.

A file is read row by row; each row is cleaned like an API create (catalog.item_fields_clean).
A bad row is reported with its line number and what is wrong, and skipped; good rows are
written in batches (an explicit catalog write: their fields win over what events say), and
the job's progress is saved after each batch.

CSV: a header row names the columns: the item fields (`external_id`, or `product_id`/`sku`;
`title` or `name`; `description`, `category`, `brand`, `price`, `currency`, `image_url`,
`url`, `availability`, `attributes` as a JSON object) and any number of `attr.<name>` columns,
which become attributes. An empty cell leaves that field as it was. JSONL: one JSON object per
line with the same keys (`attributes` an object).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from django.core.files.base import File
from django.utils import timezone

from access.row_files import (
    ImportFileError,
    RowError,
    csv_header,
    import_format,
    rows_count,
    rows_read,
)
from recommendations.catalog import ALIASES, ITEM_FIELDS, InvalidItem, item_fields_clean
from recommendations.models import ItemImport
from recommendations.services.catalog import items_upsert

logger = logging.getLogger(__name__)

BATCH = 500
MAX_REPORTED_ERRORS = 1000
ATTRIBUTE_PREFIX = "attr."
ProgressFn = Callable[[ItemImport], None]


def item_import_create(*, upload: File, file_name: str, actor: Any = None) -> ItemImport:
    """Store the upload as a queued import; the caller queues `item_import_task` after commit
    (or runs `item_import_run` itself, as the management command does)."""
    job = ItemImport(
        format=import_format(file_name),
        file_name=Path(file_name).name[:255],
        requested_by=actor if getattr(actor, "pk", None) else None,
    )
    job.file.save(Path(file_name).name, upload, save=False)
    job.save()
    return job


def item_import_run(*, job: ItemImport, progress: ProgressFn | None = None) -> ItemImport:
    """Run a queued import to its end. Claimed with a conditional update, so a redelivered
    task does not run it twice; a job that failed or finished is left as it is."""
    claimed = ItemImport.objects.filter(pk=job.pk, status=ItemImport.Status.QUEUED).update(
        status=ItemImport.Status.RUNNING
    )
    job.refresh_from_db()
    if not claimed:
        return job
    try:
        _import(job, progress)
        job.status = ItemImport.Status.DONE
        job.message = (
            f"{job.created_count} created, {job.updated_count} updated, "
            f"{job.error_count} bad rows skipped"
        )
    except ImportFileError as error:
        job.status = ItemImport.Status.FAILED
        job.message = str(error)[:300]
    except Exception:
        logger.exception("item import %s failed", job.pk)
        job.status = ItemImport.Status.FAILED
        job.message = "The import stopped on an unexpected error; rows before it are kept."
    job.finished_at = timezone.now()
    # As profile imports do: no copy of an upload outlives its import (the verification scan
    # of every erasure reads every stored file).
    job.file.delete(save=False)
    job.save()
    if progress is not None:
        progress(job)
    return job


def _import(job: ItemImport, progress: ProgressFn | None) -> None:
    with job.file.open("rb") as raw:
        job.total_rows = rows_count(raw, job.format)
    job.save(update_fields=["total_rows"])
    batch: list[dict[str, Any]] = []
    with job.file.open("rb") as raw:
        for line, row in _rows(raw, job.format):
            job.processed_rows += 1
            try:
                if isinstance(row, InvalidItem):
                    raise row
                batch.append(item_fields_clean(row))
            except InvalidItem as error:
                job.error_count += 1
                if len(job.errors) < MAX_REPORTED_ERRORS:
                    job.errors.append({"line": line, "errors": error.errors})
            if len(batch) >= BATCH:
                _flush(job, batch, progress)
                batch = []
    _flush(job, batch, progress)


def _flush(job: ItemImport, batch: list[dict[str, Any]], progress: ProgressFn | None) -> None:
    result = items_upsert(rows=batch)
    job.created_count += result.created
    job.updated_count += result.updated
    job.save(
        update_fields=[
            "processed_rows",
            "created_count",
            "updated_count",
            "errors",
            "error_count",
        ]
    )
    if progress is not None:
        progress(job)


def _rows(raw: IO[bytes], format: str) -> Iterator[tuple[int, dict[str, Any] | InvalidItem]]:
    """(line number, raw row or the reason it cannot be read) for every non-blank row."""
    if format == ItemImport.Format.CSV:
        _check_header(csv_header(raw))
        raw.seek(0)
    for line, row in rows_read(raw, format):
        if isinstance(row, RowError):
            yield line, InvalidItem({"line": [str(row)]})
        elif format == ItemImport.Format.CSV:
            yield line, _csv_row(row)
        else:
            yield line, row


def _check_header(header: list[str]) -> None:
    if not header:
        raise ImportFileError("The file is empty: a CSV import needs a header row.")
    known = set(ITEM_FIELDS) | set(ALIASES)
    unknown = [
        name for name in header if name not in known and not name.startswith(ATTRIBUTE_PREFIX)
    ]
    if unknown:
        raise ImportFileError(
            f"Unknown column(s): {', '.join(unknown)[:150]}. Columns: {', '.join(ITEM_FIELDS)}"
            f" and {ATTRIBUTE_PREFIX}<name>."
        )
    if not {"external_id", "product_id", "sku"} & set(header):
        raise ImportFileError("A column external_id (or product_id, or sku) is required.")


def _csv_row(cells: dict[str, str]) -> dict[str, Any] | InvalidItem:
    row: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for name, cell in cells.items():
        if not cell.strip():
            continue  # an empty cell leaves the field as it was
        if name.startswith(ATTRIBUTE_PREFIX):
            extra[name[len(ATTRIBUTE_PREFIX) :]] = cell.strip()
        else:
            row[name] = cell
    if extra:
        base = row.get("attributes") or "{}"
        try:
            attributes = json.loads(base)
        except ValueError:
            return InvalidItem({"attributes": ["Must be a JSON object."]})
        if not isinstance(attributes, dict):
            return InvalidItem({"attributes": ["Must be a JSON object."]})
        row["attributes"] = {**attributes, **extra}
    return row
