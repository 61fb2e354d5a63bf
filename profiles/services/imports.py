"""Bulk imports of profiles and historical events from CSV or JSON Lines, run by a worker.

Every row becomes a Segment message and goes through `ingest_messages`, as the API's batches
do: validation, dedup by messageId (a row without one gets the digest of its content, so
importing the same file twice stores nothing new), the suppression and consent filters, the
source's tracking plan, then processing by the pipeline. A refused row is reported with its
line number and the reason (not quarantined: the uploader fixes the file and imports it
again); the good rows are kept.

Profiles (kind "profiles") become `identify` messages. CSV columns: `userId`, `anonymousId`,
`messageId`, `timestamp`, and any other column is a trait (`email`, `phone`, `first_name`...,
or `traits.<name>`; a dotted name nests: `address.country`). JSONL: a message-like object
(`userId`, `traits`), or a flat object whose other keys are the traits.

Events (kind "events") are `track` messages unless `type` says otherwise. CSV columns: `type`,
`event`, `name`, `userId`, `anonymousId`, `messageId`, `timestamp`, `previousId`, `groupId`,
and `properties.<name>`, `context.<name>`, `traits.<name>`; property cells that read as JSON
numbers or booleans become them. JSONL: one Segment message per line. An empty cell is left
out. A server-side import's `timestamp` is trusted as the event time.

A job is worked in slices of IMPORT_SLICE_SECONDS (a task re-queues itself until the file is
done, so no task runs into the worker's time limit); a slice holds a lease on the job, so a
redelivered task does not run it twice, and resumes after the rows already counted.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

from django.core.files.base import File
from django.db.models import Q
from django.utils import timezone

from access.models import Source
from access.row_files import (
    ImportFileError,
    RowError,
    csv_header,
    import_format,
    rows_count,
    rows_read,
)
from profiles.ingestion import IngestError, ingest_messages
from profiles.models import DataImport

logger = logging.getLogger(__name__)

BATCH = 5000
MAX_REPORTED_ERRORS = 1000
IMPORT_SLICE_SECONDS = 60.0
ProgressFn = Callable[[DataImport], None]

_ID_COLUMNS = ("userId", "anonymousId", "messageId", "timestamp")
_EVENT_COLUMNS = (*_ID_COLUMNS, "type", "event", "name", "previousId", "groupId")
_EVENT_PREFIXES = ("properties.", "context.", "traits.")
_JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def data_import_create(
    *, source: Source, kind: str, upload: File, file_name: str, actor: Any = None
) -> DataImport:
    """Store the upload as a queued import, its CSV header checked; the caller queues
    `data_import_task` after commit (or runs `data_import_run` itself, as the commands do)."""
    format = import_format(file_name)
    if kind not in DataImport.Kind.values:
        raise ImportFileError(f"Unknown import kind {kind!r}.")
    if format == DataImport.Format.CSV:
        upload.seek(0)
        _header_check(kind, csv_header(upload))
        upload.seek(0)
    job = DataImport(
        source=source,
        kind=kind,
        format=format,
        file_name=Path(file_name).name[:255],
        requested_by=actor if getattr(actor, "pk", None) else None,
    )
    job.file.save(Path(file_name).name, upload, save=False)
    job.save()
    return job


def data_import_run(
    *,
    job: DataImport,
    progress: ProgressFn | None = None,
    slice_seconds: float | None = None,
) -> DataImport:
    """Work on an import for at most `slice_seconds` (None: to its end) and return it; the
    caller re-queues it while it is not `finished`. Does nothing when another worker holds
    the job's lease or the job is finished."""
    now = timezone.now()
    lease = timedelta(seconds=(slice_seconds or 24 * 3600) + 120)
    claimed = (
        DataImport.objects.filter(
            pk=job.pk, status__in=[DataImport.Status.QUEUED, DataImport.Status.RUNNING]
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(status=DataImport.Status.RUNNING, lease_until=now + lease)
    )
    job.refresh_from_db()
    if not claimed:
        return job
    try:
        if _import_slice(job, progress, slice_seconds):
            job.status = DataImport.Status.DONE
            job.message = (
                f"{job.accepted_count} stored, {job.duplicate_count} already there, "
                f"{job.dropped_count} dropped (suppressed or without consent), "
                f"{job.error_count - job.dropped_count} refused"
            )
    except (ImportFileError, IngestError) as error:
        job.status = DataImport.Status.FAILED
        job.message = str(error)[:300]
    except Exception:
        logger.exception("data import %s failed", job.pk)
        job.status = DataImport.Status.FAILED
        job.message = "The import stopped on an unexpected error; rows before it are kept."
    if job.finished:
        job.finished_at = timezone.now()
        # The upload holds people's data outside every table that erasure, retention and the
        # PII gate reach; once its rows are stored (or refused, by line), it goes.
        job.file.delete(save=False)
    job.lease_until = None
    job.save()
    if progress is not None:
        progress(job)
    return job


def _import_slice(
    job: DataImport, progress: ProgressFn | None, slice_seconds: float | None
) -> bool:
    """Import rows from where the job stands; True when the file is done."""
    if not job.total_rows:
        with job.file.open("rb") as raw:
            job.total_rows = rows_count(raw, job.format)
        job.save(update_fields=["total_rows"])
    deadline = time.monotonic() + slice_seconds if slice_seconds else None
    to_message = profile_row_message if job.kind == DataImport.Kind.PROFILES else event_row_message
    batch: list[tuple[int, dict[str, Any]]] = []
    with job.file.open("rb") as raw:
        rows = _rows(raw, job)
        for _ in range(job.processed_rows):  # done by an earlier slice
            next(rows, None)
        for line, row in rows:
            job.processed_rows += 1
            if isinstance(row, RowError):
                _report(job, line, str(row))
            else:
                batch.append((line, to_message(row, csv=job.format == DataImport.Format.CSV)))
            if len(batch) >= BATCH:
                _flush(job, batch, progress)
                batch = []
                if deadline is not None and time.monotonic() > deadline:
                    return False
    _flush(job, batch, progress)
    return True


def _rows(raw: IO[bytes], job: DataImport) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    if job.format == DataImport.Format.CSV:
        _header_check(job.kind, csv_header(raw))
        raw.seek(0)
    return rows_read(raw, job.format)


def _flush(
    job: DataImport, batch: list[tuple[int, dict[str, Any]]], progress: ProgressFn | None
) -> None:
    if batch:
        result = ingest_messages(
            source=job.source, messages=[message for _, message in batch], quarantine=False
        )
        job.accepted_count += result.accepted
        job.duplicate_count += result.duplicates
        job.dropped_count += result.dropped
        for index, reason in result.invalid_at + result.dropped_at:
            _report(job, batch[index][0], reason)
        job.errors.sort(key=lambda bad: bad["line"])  # rows unreadable were reported first
    job.save(
        update_fields=[
            "total_rows",
            "processed_rows",
            "accepted_count",
            "duplicate_count",
            "dropped_count",
            "errors",
            "error_count",
        ]
    )
    if progress is not None:
        progress(job)


def _report(job: DataImport, line: int, reason: str) -> None:
    job.error_count += 1
    if len(job.errors) < MAX_REPORTED_ERRORS:
        job.errors.append({"line": line, "reason": reason[:500]})


def _header_check(kind: str, header: list[str]) -> None:
    if not header or not any(header):
        raise ImportFileError("The file is empty: a CSV import needs a header row.")
    if kind == DataImport.Kind.PROFILES:
        if not {"userId", "anonymousId"} & set(header):
            raise ImportFileError("A column userId (or anonymousId) is required.")
        return
    unknown = [
        name
        for name in header
        if name not in _EVENT_COLUMNS and not name.startswith(_EVENT_PREFIXES)
    ]
    if unknown:
        raise ImportFileError(
            f"Unknown column(s): {', '.join(unknown)[:150]}. Columns: "
            f"{', '.join(_EVENT_COLUMNS)} and properties.<name>, context.<name>, traits.<name>."
        )


@lru_cache(maxsize=4096)
def _column_path(name: str) -> tuple[str, ...]:
    """A column name's parts (`properties.address.city`), split once per name, not per cell."""
    return tuple(name.split("."))


def _nested_set(target: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = _column_path(dotted)
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


@lru_cache(maxsize=65536)
def _cell_value(cell: str) -> Any:
    """A property cell: a JSON number or boolean as such, any other text as it is. Cached (the
    values are immutable): a file repeats its quantities, prices and flags."""
    if cell in ("true", "false"):
        return cell == "true"
    if not (cell[0].isdigit() or cell[0] == "-"):
        return cell
    match = _JSON_NUMBER.fullmatch(cell)
    if match is None:
        return cell
    return float(cell) if match.group(2) or match.group(3) else int(cell)


def profile_row_message(row: dict[str, Any], *, csv: bool) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "identify"}
    traits: dict[str, Any] = {}
    if not csv and isinstance(row.get("traits"), dict):
        message.update({k: v for k, v in row.items() if k != "type"})
        message["type"] = "identify"
        return message
    for name, value in row.items():
        if csv and (not isinstance(value, str) or not value.strip()):
            continue
        if name in _ID_COLUMNS:
            message[name] = value.strip() if isinstance(value, str) else value
        elif csv:
            _nested_set(traits, name.removeprefix("traits."), value.strip())
        else:
            traits[name] = value
    message["traits"] = traits
    return message


def event_row_message(row: dict[str, Any], *, csv: bool) -> dict[str, Any]:
    if not csv:
        return row if "type" in row else {"type": "track", **row}
    message: dict[str, Any] = {"type": "track"}
    for name, cell in row.items():
        cell = cell.strip()
        if not cell:
            continue
        if "." not in name:
            message[name] = cell
        elif name.startswith("properties."):
            _nested_set(message, name, _cell_value(cell))
        else:
            _nested_set(message, name, cell)
    return message
