"""Import catalog items from a CSV or JSONL file, printing progress and the bad rows."""

from pathlib import Path

from django.core.files import File
from django.core.management.base import CommandError
from django.db import transaction

from access.management.file_import import FileImportCommand
from recommendations.services import ImportFileError, item_import_create, item_import_run
from recommendations.tasks import item_import_task


class Command(FileImportCommand):
    help = (
        "Import catalog items from FILE (.csv with a header row, or .jsonl). Bad rows are "
        "reported by line number and skipped; the good ones are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="path of a .csv or .jsonl file")
        parser.add_argument(
            "--queue",
            action="store_true",
            help="queue the import on a worker instead of running it here",
        )

    def handle(self, *args, file: str, queue: bool, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            with path.open("rb") as handle:
                job = item_import_create(upload=File(handle), file_name=path.name)
        except ImportFileError as error:
            raise CommandError(str(error)) from None
        if queue:
            transaction.on_commit(lambda: item_import_task.delay(job.pk))
            self.stdout.write(f"import {job.pk} queued")
            return
        job = item_import_run(job=job, progress=self.progress)
        self.report(
            job,
            lambda bad: "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in bad["errors"].items()
            ),
        )
