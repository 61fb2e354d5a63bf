"""Celery adapters for identity matching: they take ids and call identity.services."""

from celery import shared_task

from identity.models import RescanJob
from identity.services import RescanBusyError, rescan_job_create, rescan_job_run


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def identity_rescan_task(job_id: int) -> None:
    rescan_job_run(job=RescanJob.objects.get(pk=job_id))


@shared_task(acks_late=True)
def identity_match_incremental_task() -> None:
    """Beat: match the profiles changed since the last run (skipped while one runs)."""
    try:
        job = rescan_job_create(full=False)
    except RescanBusyError:
        return
    rescan_job_run(job=job)
