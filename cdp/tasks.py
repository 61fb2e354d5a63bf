"""Celery adapters for the pipeline: they take ids and call cdp.pipeline. Ingestion (in
`profiles`, below) hands them event ids by name (`profiles.ingestion.batching`).

Both run on the "ingest" queue (settings.CELERY_TASK_ROUTES) and are acknowledged late, so a
worker that dies mid-chunk leaves the task to be redelivered; redelivery is harmless because
processing claims only unprocessed events.
"""

from celery import shared_task
from celery.signals import worker_init
from django.conf import settings
from django.db import OperationalError

from cdp import pipeline


@worker_init.connect
def _parsers_warm_up(**_: object) -> None:
    """Compile the user-agent and phone parsers once in the worker's parent process, before it
    forks its pool: otherwise every pool process spends seconds on its first chunk."""
    from profiles.identifiers import phone_normalize
    from profiles.services import user_agent_parse

    user_agent_parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0")
    phone_normalize("+1 415 555 0100", region="US")


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def events_process_task(event_ids: list[int]) -> int:
    # Taking on other pending events up to a full chunk turns a flood of small tasks into a
    # few large transactions; the tasks left behind find their events done and return.
    return pipeline.events_process(event_ids=event_ids, fill_to=settings.INGEST_PROCESS_CHUNK)


@shared_task(acks_late=True)
def events_process_pending_task() -> int:
    """Beat safety net (every minute): picks up accepted events whose processing task was lost."""
    return pipeline.events_process_pending()
