from celery import shared_task

from profiles import services
from profiles.models import DataImport


@shared_task(acks_late=True)
def data_import_task(job_id: int) -> None:
    """Import a slice of the file, then queue the next slice until the file is done."""
    job = DataImport.objects.filter(pk=job_id).first()
    if job is None:
        return
    job = services.data_import_run(job=job, slice_seconds=services.IMPORT_SLICE_SECONDS)
    if not job.finished and job.lease_until is None:
        data_import_task.delay(job.pk)
