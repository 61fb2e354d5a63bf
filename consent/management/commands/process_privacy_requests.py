"""Process the privacy requests that are due (verified and waiting), synchronously."""

from django.core.management.base import BaseCommand, CommandError

from consent.models import RequestStatus
from consent.services import privacy_requests_process_due


class Command(BaseCommand):
    help = "Process verified privacy requests waiting to run (the beat schedule runs the same)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=50, help="at most this many requests")

    def handle(self, *args, limit: int, **options):
        if limit < 1:
            raise CommandError("--limit must be at least 1")
        processed = privacy_requests_process_due(limit=limit)
        failed = 0
        for request in processed:
            self.stdout.write(f"#{request.pk} {request.regulation_type}: {request.status}")
            failed += request.status == RequestStatus.FAILED
        self.stdout.write(f"{len(processed)} request(s) processed")
        if failed:
            raise CommandError(f"{failed} request(s) failed; see the console for details")
