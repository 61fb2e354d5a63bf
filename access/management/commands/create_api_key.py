from django.core.management.base import BaseCommand, CommandError

from access.auth import SCOPES
from access.services import InvalidScopeError, api_key_create


class Command(BaseCommand):
    help = "Create an API key for /api/v1/; prints the key (shown only once) on the last line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--scopes",
            nargs="+",
            required=True,
            help=f"scopes, space or comma separated: {' '.join(SCOPES)}",
        )

    def handle(self, *args, name: str, scopes: list[str], **options):
        flat = [s.strip() for item in scopes for s in item.split(",") if s.strip()]
        try:
            issued = api_key_create(name=name, scopes=flat)
        except InvalidScopeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Created API key {name!r} with scopes {' '.join(issued.record.scopes)}. "
            "Store it now; it is not shown again:"
        )
        self.stdout.write(issued.key)
