import logging

from django.core.management.base import BaseCommand, CommandError

from access.models import Source
from access.services import source_create
from profiles.demo import demo_seed

DEMO_SOURCE = "Demo website"


class Command(BaseCommand):
    help = (
        "Load a demo online shop (products, people, sessions, orders, consent) through the "
        "ingestion service. Deterministic by --seed; re-running the same seed adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--profiles", type=int, default=300, help="people to generate")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--source", default=DEMO_SOURCE, help="source name (created if new)")

    def handle(self, *args, profiles: int, seed: int, source: str, **options):
        if profiles < 1:
            raise CommandError(f"--profiles must be at least 1, not {profiles}")
        if not source.strip():
            raise CommandError("--source must not be empty")
        record = Source.objects.filter(name=source).first()
        if record is None:
            issued = source_create(name=source)
            record = issued.record
            self.stdout.write(f"Created source {source!r}; its write key: {issued.key}")
        # Inline processing (no REDIS_URL) logs every task at INFO: too chatty for a seed.
        logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
        logging.getLogger("kombu.connection").setLevel(logging.ERROR)
        stats = demo_seed(source=record, profiles=profiles, seed=seed)
        kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(stats.by_type.items()))
        self.stdout.write(
            f"Seeded {stats.people} people ({stats.duplicates} registered twice) into "
            f"{source!r}: {stats.messages} messages ({kinds}), {stats.orders} orders, "
            f"in {stats.seconds:.1f} s. Stored {stats.accepted}, already there "
            f"{stats.already_stored}, quarantined {stats.quarantined}."
        )
