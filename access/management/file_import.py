"""What every file-import command prints (import_profiles, import_events, items_import):
progress while it runs, the bad rows by line number, and a non-zero exit when it failed."""

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from access.models import FileImport


class FileImportCommand(BaseCommand):
    def progress(self, job: FileImport) -> None:
        self.stdout.write(f"  {job.processed_rows}/{job.total_rows} rows ({job.progress}%)")

    def report(self, job: FileImport, bad_row: Callable[[dict[str, Any]], str]) -> None:
        """Print each reported bad row (`bad_row` says what was wrong with it), then the
        job's message; a failed job exits non-zero."""
        for bad in job.errors:
            self.stdout.write(f"line {bad['line']}: {bad_row(bad)}")
        if job.error_count > len(job.errors):
            self.stdout.write(f"... and {job.error_count - len(job.errors)} more bad rows")
        self.stdout.write(job.message)
        if job.status == FileImport.Status.FAILED:
            raise CommandError(job.message)
