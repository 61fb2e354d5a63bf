"""A demo shop that looks alive: its history through ingestion, then what a team would have done
with it (segments, trained models, an identity rescan, privacy requests in different states).

It lives in `cdp`, at the top of the layers, because it calls every app's services. Each step
is idempotent: re-running the same seed adds nothing (messages are deduplicated; segments and
privacy requests are created only when missing; models retrain only on new data).
"""

import logging
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from access.models import Source
from access.services import source_create
from cdp import pipeline
from consent import services as consent_services
from consent.models import PrivacyRequest
from identity import services as identity_services
from identity.selectors import match_settings
from profiles.demo import demo_people, demo_seed
from profiles.services import events_pending_ids
from recommendations import services as recommendation_services
from segments import services as segment_services
from segments.models import ModelRun, Segment

DEMO_SOURCE = "Demo website"
PROCESS_CHUNK = 500

# Name, description, definition: what a shop's marketers build first.
DEMO_SEGMENTS = [
    (
        "Recent buyers",
        "Ordered in the last 30 days.",
        {"event": "Order Completed", "within": {"days": 30}},
    ),
    (
        "Big spenders",
        "Spent more than 150 in all.",
        {"computed": "revenue", "op": "gt", "value": 150},
    ),
    (
        "Cart abandoners",
        "Added to the cart in the last 7 days and did not order within a day.",
        {
            "event": "Product Added",
            "within": {"days": 7},
            "not_followed_by": {"event": "Order Completed", "within": {"days": 1}},
        },
    ),
]


class Command(BaseCommand):
    help = (
        "Load a demo online shop (products, people, sessions, orders, consent) through the "
        "ingestion service, received over the last 30 days; then create example segments, "
        "train the models and the recommender, run an identity rescan and open privacy "
        "requests. Deterministic by --seed; re-running the same seed adds nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--profiles", type=int, default=300, help="people to generate")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--source", default=DEMO_SOURCE, help="source name (created if new)")
        parser.add_argument(
            "--events-only",
            action="store_true",
            help="only the shop's events: no segments, models, rescan or privacy requests",
        )

    def handle(self, *args: Any, profiles: int, seed: int, source: str, **options: Any) -> None:
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
        if options["events_only"]:
            return
        self._process_pending()
        self._segments()
        self._rescan()
        self._models()
        self._privacy_requests(profiles=profiles, seed=seed)

    def _process_pending(self) -> None:
        """The later steps read profiles: process what the workers have not yet (claimed per
        event, so a worker processing the same events meanwhile is harmless)."""
        while ids := events_pending_ids(older_than=timedelta(0), limit=PROCESS_CHUNK):
            if not pipeline.events_process(event_ids=ids):
                break

    def _segments(self) -> None:
        created = []
        for name, description, definition in DEMO_SEGMENTS:
            if not Segment.objects.filter(name=name).exists():
                segment_services.segment_create(
                    name=name, description=description, definition=definition
                )
                created.append(name)
        self.stdout.write(f"Segments: {', '.join(created) or 'already there'}.")

    def _rescan(self) -> None:
        """A full rescan that merges only certain pairs and leaves the likely ones to the review
        queue, which is what a new team should see at work; the threshold is then put back."""
        threshold = match_settings().merge_threshold
        identity_services.match_settings_update(actor=None, merge_threshold=1.0)
        try:
            job = identity_services.rescan_job_create(full=True)
            summary = identity_services.rescan_job_run(job=job)
        except identity_services.RescanBusyError:
            self.stdout.write("Identity rescan: one is already running.")
            return
        finally:
            identity_services.match_settings_update(actor=None, merge_threshold=threshold)
        self.stdout.write(
            f"Identity rescan: {summary.candidates} candidates, {summary.merged} merged, "
            f"{summary.queued} for review."
        )

    def _models(self) -> None:
        for kind in ModelRun.Kind.values:
            run = segment_services.model_train_request(kind=kind)
            if current_app.conf.task_always_eager:
                run.refresh_from_db()
                self.stdout.write(f"Model {kind}: {run.status} ({run.message}).")
            else:
                self.stdout.write(f"Model {kind}: queued on the ml workers.")
        recommender = recommendation_services.model_train_request(
            kind=settings.RECS_DEFAULT_KIND, actor=None
        )
        recommender = recommendation_services.model_train(run=recommender)
        self.stdout.write(f"Recommender {recommender.kind}: {recommender.status}.")

    def _privacy_requests(self, *, profiles: int, seed: int) -> None:
        """Three requests from demo people: an access request done (its export waiting to be
        delivered), an erasure waiting for identity verification, and a suppression (a CCPA opt-out)
        verified and waiting to run."""
        if PrivacyRequest.objects.exists():
            self.stdout.write("Privacy requests: already there.")
            return
        people = [p for p in demo_people(profiles=profiles, seed=seed) if p.duplicate_of is None]
        if len(people) < 3:
            return
        access = consent_services.privacy_request_create(
            regulation_type="ACCESS", subject={"email": people[0].email}
        )
        consent_services.privacy_request_verify(
            request=access, actor=None, note="Demo: identity checked by email reply."
        )
        consent_services.privacy_request_process(request=access)
        consent_services.privacy_request_create(
            regulation_type="DELETE_ONLY", subject={"email": people[1].email}
        )
        opt_out = consent_services.privacy_request_create(
            regulation_type="SUPPRESS_ONLY", regulation="CCPA", subject={"email": people[2].email}
        )
        consent_services.privacy_request_verify(
            request=opt_out, actor=None, note="Demo: signed in when asking."
        )
        self.stdout.write("Privacy requests: 1 finished, 1 awaiting verification, 1 to run.")
