"""Celery adapters: they take ids and call one service (STYLE rule 6). Imports run on the
default queue; training on the ml queue (cdp/settings.py CELERY_TASK_ROUTES)."""

from celery import shared_task

from recommendations import services
from recommendations.models import ItemImport, ModelRun


@shared_task(acks_late=True)
def item_import_task(job_id: int) -> None:
    job = ItemImport.objects.filter(pk=job_id).first()
    if job is not None:
        services.item_import_run(job=job)


@shared_task(acks_late=True)
def model_train_task(run_id: int) -> None:
    run = ModelRun.objects.filter(pk=run_id).first()
    if run is not None:
        services.model_train(run=run)


@shared_task(acks_late=True)
def models_retrain_task() -> None:
    """Beat: retrain the serving kind (skipped inside when the data did not change)."""
    services.model_train(run=services.models_retrain_scheduled())


@shared_task(acks_late=True)
def model_drift_check_task() -> None:
    """Beat: today's PSI and click-through of the serving run (one row per run and day)."""
    services.recommender_drift_check()
