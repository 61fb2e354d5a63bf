"""Model runs: a queued training of one model kind, run by a task, whose outputs (cluster labels,
propensity scores) become the profiles' scores once it succeeds."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from access.queueing import task_named
from access.services import audit_record
from segments.ml.artifacts import FORMAT_VERSION, data_hash
from segments.ml.features import NotEnoughData
from segments.ml.training import (
    ML_THREADS,
    data_fingerprint,
    project_frames,
    train_clusters,
    train_propensity,
)
from segments.models import ModelRun, ProfileScore
from segments.services.task_names import MODEL_TRAIN_TASK

log = logging.getLogger(__name__)


def model_train_request(*, kind: str, actor: User | None = None) -> ModelRun:
    """Record a queued run and start its task after commit (the ml queue)."""
    run = ModelRun.objects.create(
        kind=kind, requested_by=actor if getattr(actor, "pk", None) else None
    )
    audit_record(actor=actor, action="model.train", resource="model_runs", resource_id=run.pk)
    task_named(MODEL_TRAIN_TASK).delay_on_commit(run.pk)
    return run


def models_retrain_all() -> list[ModelRun]:
    """Queue every kind whose data changed since its active model was trained."""
    fingerprint = data_fingerprint()
    queued = []
    for kind in ModelRun.Kind.values:
        active = ModelRun.objects.filter(kind=kind, is_active=True).first()
        if active is not None and active.metrics.get("fingerprint") == fingerprint:
            continue
        queued.append(model_train_request(kind=kind))
    return queued


def model_train(*, run_id: int, now: dt.datetime | None = None) -> ModelRun:
    """Train one recorded run, reporting progress on the row; on success it becomes the active
    model of its kind (the previous stays recorded) and its outputs are written to profiles."""
    run = ModelRun.objects.get(pk=run_id)
    if run.status not in (ModelRun.Status.QUEUED, ModelRun.Status.FAILED):
        return run
    now = now or timezone.now()
    try:
        outputs, fields = _run_fit(run, now)
        _run_activate(run, outputs, fields)
    except NotEnoughData as error:
        # What the data lacks, in words for the models page: not a fault, no traceback.
        log.info("model run %s refused: %s", run.pk, error)
        _run_fail(run, str(error))
    except Exception as error:
        log.exception("model run %s failed", run.pk)
        _run_fail(run, f"{error.__class__.__name__}: {error}")
    run.refresh_from_db()
    return run


def _run_fit(run: ModelRun, now: dt.datetime) -> tuple[dict[int, float], dict[str, Any]]:
    """Load the project's data and fit the run's kind: (outputs by profile id, run fields)."""
    from threadpoolctl import threadpool_limits

    def progress(percent: int, message: str) -> None:
        ModelRun.objects.filter(pk=run.pk).update(
            progress=percent, message=message[:300], status=ModelRun.Status.RUNNING
        )

    progress(5, "Loading events")
    fingerprint = data_fingerprint()
    orders, activity, lines = project_frames()
    progress(30, "Computing features")
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
    return outputs, fields


@transaction.atomic
def _run_activate(run: ModelRun, outputs: dict[int, float], fields: dict[str, Any]) -> None:
    """The run's outputs replace its kind's scores, and it becomes its kind's active model."""
    ProfileScore.objects.filter(kind=run.kind).delete()
    ProfileScore.objects.bulk_create(
        [
            ProfileScore(profile_id=pid, kind=run.kind, value=value, run=run)
            for pid, value in outputs.items()
        ],
        batch_size=5000,
    )
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
    audit_record(
        actor=None,
        action="model.activate",
        resource="model_runs",
        resource_id=run.pk,
        details={"kind": run.kind},
    )


def _run_fail(run: ModelRun, message: str) -> None:
    ModelRun.objects.filter(pk=run.pk).update(
        status=ModelRun.Status.FAILED, message=message[:300], finished_at=timezone.now()
    )
