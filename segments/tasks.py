"""Celery adapters: they take ids and call one service (STYLE rule 6). The tasks that services
queue are registered under the names in `segments.services.task_names`."""

from celery import shared_task

from access.metrics import delivery_outcome_record
from segments import services
from segments.models import MembershipChange, Segment
from segments.services.task_names import (
    MODEL_TRAIN_TASK,
    SEGMENT_REFRESH_TASK,
    WEBHOOK_DELIVER_TASK,
)


@shared_task(name=SEGMENT_REFRESH_TASK, acks_late=True)
def segment_refresh_task(segment_id: int, cause: str = MembershipChange.Cause.REFRESH) -> None:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is not None:
        services.segment_refresh(segment=segment, cause=cause)


@shared_task(acks_late=True)
def segments_refresh_all_task() -> None:
    services.segments_refresh_all()


@shared_task(
    name=WEBHOOK_DELIVER_TASK,
    acks_late=True,
    autoretry_for=(services.TransientError,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=services.WEBHOOK_MAX_ATTEMPTS,
)
def webhook_deliver_task(delivery_id: int) -> None:
    if delivery := services.webhook_delivery_send(delivery_id=delivery_id):
        delivery_outcome_record(channel="segment_webhook", outcome=delivery.state)


@shared_task(name=MODEL_TRAIN_TASK, acks_late=True)
def model_train_task(run_id: int) -> None:
    services.model_train(run_id=run_id)


@shared_task(acks_late=True)
def models_retrain_all_task() -> None:
    """Beat: queue a training of every model kind (each retrains only if its data changed)."""
    services.models_retrain_all()


@shared_task(acks_late=True)
def model_drift_check_task() -> None:
    """Beat: today's PSI of each serving propensity model (one row per run and day)."""
    services.propensity_drift_check()
