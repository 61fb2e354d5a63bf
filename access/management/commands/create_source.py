from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError

from access.services import source_create


class Command(BaseCommand):
    help = "Create an event source; prints its write key alone on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--write-key", help="use this write key instead of a random one")

    def handle(self, *args, name: str, write_key: str | None, **options):
        if not name.strip():
            raise CommandError("the source name must not be empty")
        try:
            issued = source_create(name=name.strip(), write_key=write_key)
        except IntegrityError as exc:
            raise CommandError(f"a source named {name!r} or with that write key exists") from exc
        self.stdout.write(f"Created source {issued.record.name!r}. Its write key:")
        self.stdout.write(issued.key)
