"""Celery adapters for the ingestion pipeline: they take ids and call cdp.pipeline."""

from celery import shared_task

from cdp import pipeline


@shared_task(acks_late=True)
def events_process_task(event_ids: list[int]) -> None:
    pipeline.events_process(event_ids=event_ids)


@shared_task(acks_late=True)
def events_process_pending_task() -> None:
    """Beat safety net: picks up accepted events whose processing task was lost."""
    pipeline.events_process_pending()
