"""Celery adapters: they take ids and call one service (STYLE rule 6). All are idempotent:
the services claim their rows, so a task delivered twice (acks_late) does nothing more."""

from celery import shared_task

from access.metrics import delivery_outcome_record
from campaigns import services
from campaigns.models import Delivery


@shared_task(acks_late=True)
def entries_advance_task(entry_ids: list[int]) -> None:
    _outcomes_count(services.entries_advance_send(entry_ids=entry_ids))


@shared_task(acks_late=True)
def entries_due_task() -> None:
    services.entries_due_advance()


@shared_task(acks_late=True)
def delivery_send_task(delivery_id: int) -> None:
    deliveries_send_task(delivery_ids=[delivery_id])


@shared_task(acks_late=True)
def deliveries_send_task(delivery_ids: list[int]) -> None:
    _outcomes_count(services.deliveries_send(delivery_ids=delivery_ids))


def _outcomes_count(deliveries: list[Delivery]) -> None:
    for delivery in deliveries:
        delivery_outcome_record(channel=delivery.channel.kind, outcome=delivery.status)


@shared_task(acks_late=True)
def deliveries_due_task() -> None:
    services.deliveries_sweep()


@shared_task(acks_late=True)
def broadcasts_due_task() -> None:
    services.broadcasts_due()


@shared_task(acks_late=True)
def broadcast_batch_task(campaign_id: int) -> None:
    services.broadcast_batch(campaign_id=campaign_id)


@shared_task(acks_late=True)
def bandits_refresh_task() -> None:
    services.bandits_refresh()
