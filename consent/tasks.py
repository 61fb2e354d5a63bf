"""Celery adapters: they take ids and call one service."""

from celery import shared_task

from consent import services
from consent.models import PrivacyRequest


@shared_task(acks_late=True)
def privacy_request_process_task(request_id: int) -> None:
    request = PrivacyRequest.objects.filter(pk=request_id).first()
    if request is not None:
        services.privacy_request_process(request=request)


@shared_task(acks_late=True)
def privacy_requests_process_due_task() -> None:
    services.privacy_requests_process_due()


@shared_task(acks_late=True)
def retention_purge_task() -> None:
    services.retention_purge()
