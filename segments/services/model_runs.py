"""Model runs: a queued training of one model kind, run by a task, whose outputs (cluster labels,
propensity scores) become the profiles' scores once it succeeds."""

from __future__ import annotations

import logging
from typing import Any

from segments.ml.artifacts import FORMAT_VERSION, data_hash
from segments.ml.features import NotEnoughData
from segments.ml.training import (
    ML_THREADS,
    data_fingerprint,
    project_frames,
    train_clusters,
    train_propensity,
)
from segments.services.task_queue import MODEL_TRAIN_TASK, segments_task

log = logging.getLogger(__name__)


def model_train_request(*, kind: str, actor: Any = None) -> Any:
    """Record a queued run and start its task after commit (the ml queue)."""

    from segments.models import ModelRun

    run = ModelRun.objects.create(
        kind=kind, requested_by=actor if getattr(actor, "pk", None) else None
    )
    segments_task(MODEL_TRAIN_TASK).delay_on_commit(run.pk)
    return run


def models_retrain_all() -> list[Any]:
    """Queue every kind whose data changed since its active model was trained."""
    from segments.models import ModelRun

    fingerprint = data_fingerprint()
    queued = []
    for kind in ModelRun.Kind.values:
        active = ModelRun.objects.filter(kind=kind, is_active=True).first()
        if active is not None and active.metrics.get("fingerprint") == fingerprint:
            continue
        queued.append(model_train_request(kind=kind))
    return queued


def model_train(*, run_id: int, now: Any = None) -> Any:
    """Train one recorded run, reporting progress on the row; on success it becomes the active
    model of its kind (the previous stays recorded) and its outputs are written to profiles."""
    from django.db import transaction
    from django.utils import timezone

    from segments.models import ModelRun

    run = ModelRun.objects.get(pk=run_id)
    if run.status not in (ModelRun.Status.QUEUED, ModelRun.Status.FAILED):
        return run
    now = now or timezone.now()

    def progress(percent: int, message: str) -> None:
        ModelRun.objects.filter(pk=run.pk).update(
            progress=percent, message=message[:300], status=ModelRun.Status.RUNNING
        )

    try:
        progress(5, "Loading events")
        fingerprint = data_fingerprint()
        orders, activity, lines = project_frames()
        progress(30, "Computing features")
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=ML_THREADS):
            if run.kind == ModelRun.Kind.CLUSTER:
                outputs, fields = train_clusters(orders, activity, now, progress)
            else:
                outputs, fields = train_propensity(
                    run.kind, orders, activity, now, progress, lines=lines
                )
        fields["data_hash"] = data_hash(orders, activity, lines)
        fields["metrics"]["fingerprint"] = fingerprint
        progress(90, "Writing scores")
        with transaction.atomic():
            _write_scores(run, outputs)
            ModelRun.objects.filter(kind=run.kind, is_active=True).update(is_active=False)
            ModelRun.objects.filter(pk=run.pk).update(
                status=ModelRun.Status.DONE,
                progress=100,
                message="Done",
                is_active=True,
                finished_at=timezone.now(),
                format_version=FORMAT_VERSION,
                **fields,
            )
    except NotEnoughData as error:
        # What the data lacks, in words for the models page: not a fault, no traceback.
        log.info("model run %s refused: %s", run.pk, error)
        ModelRun.objects.filter(pk=run.pk).update(
            status=ModelRun.Status.FAILED, message=str(error)[:300], finished_at=timezone.now()
        )
    except Exception as error:
        log.exception("model run %s failed", run.pk)
        ModelRun.objects.filter(pk=run.pk).update(
            status=ModelRun.Status.FAILED,
            message=f"{error.__class__.__name__}: {error}"[:300],
            finished_at=timezone.now(),
        )
    run.refresh_from_db()
    return run


def _write_scores(run: Any, outputs: dict[int, float]) -> None:
    from segments.models import ProfileScore

    ProfileScore.objects.filter(kind=run.kind).delete()
    ProfileScore.objects.bulk_create(
        [
            ProfileScore(profile_id=pid, kind=run.kind, value=value, run=run)
            for pid, value in outputs.items()
        ],
        batch_size=5000,
    )
