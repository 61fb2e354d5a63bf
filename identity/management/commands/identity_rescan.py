"""`manage.py identity_rescan [--full]`: run the fuzzy matcher now and print what it did."""

from django.core.management.base import BaseCommand, CommandError

from identity.services import RescanBusyError, rescan_job_create, rescan_job_run


class Command(BaseCommand):
    help = "Match profiles (incremental by default, --full to rescan all) and print a summary."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="rescan every profile")

    def handle(self, *args, **options):
        try:
            job = rescan_job_create(full=options["full"])
        except RescanBusyError as error:
            raise CommandError(f"{error}; try again when it has finished") from error
        summary = rescan_job_run(job=job)
        self.stdout.write(
            f"{summary.kind} rescan: {summary.profiles} profiles, {summary.pairs} pairs compared, "
            f"{summary.candidates} candidates, {summary.merged} merged, {summary.queued} queued "
            f"for review ({summary.seconds:.1f} s)"
        )
        if summary.held:
            self.stdout.write(f"No automatic merges: {summary.held}.")
