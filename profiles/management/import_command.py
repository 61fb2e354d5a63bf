"""What `import_profiles` and `import_events` share: read FILE into a source, print progress
and the refused rows by line number, exit non-zero when the file cannot be imported."""

from pathlib import Path
from typing import Any

from django.core.files import File
from django.core.management.base import CommandError
from django.db import transaction

from access.management.file_import import FileImportCommand
from access.models import Source
from access.row_files import ImportFileError
from profiles.services import data_import_create, data_import_run
from profiles.tasks import data_import_task


class ImportCommand(FileImportCommand):
    kind: str

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", help="path of a .csv (with a header row) or .jsonl file")
        parser.add_argument("--source", required=True, help="name of the source to import into")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="queue the import on a worker instead of running it here",
        )

    def handle(self, *args: Any, file: str, source: str, queue: bool, **options: Any) -> None:
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        into = Source.objects.filter(name=source).first()
        if into is None:
            raise CommandError(f"no source named {source!r} (create_source makes one)")
        try:
            with path.open("rb") as handle:
                job = data_import_create(
                    source=into, kind=self.kind, upload=File(handle), file_name=path.name
                )
        except ImportFileError as error:
            raise CommandError(f"{file}: {error}") from None
        if queue:
            transaction.on_commit(lambda: data_import_task.delay(job.pk))
            self.stdout.write(f"import {job.pk} queued")
            return
        job = data_import_run(job=job, progress=self.progress)
        self.report(job, lambda bad: bad["reason"])
