"""Model runs: a queued training of one model kind, run by a task, whose outputs (cluster labels,
propensity scores) become the profiles' scores once it succeeds."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from access.parsers import unstorable
from access.queueing import task_named
from access.services import audit_record
from segments.ml.artifacts import FORMAT_VERSION, data_hash
from segments.ml.card import activation_decision, below_baseline, cluster_decision
from segments.ml.drift import reference_distribution
from segments.ml.features import NotEnoughData
from segments.ml.training import (
    ML_THREADS,
    ServingRun,
    data_fingerprint,
    project_frames,
    scores_today,
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
    """Queue every kind whose data changed since its latest trained run (used or not)."""
    fingerprint = data_fingerprint()
    queued = []
    trained = (ModelRun.Status.DONE, ModelRun.Status.NOT_USED)
    for kind in ModelRun.Kind.values:
        latest = ModelRun.objects.filter(kind=kind, status__in=trained).first()
        if latest is not None and latest.metrics.get("fingerprint") == fingerprint:
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
        scores, fields = _run_fit(run, now)
        serves, decision = _run_decision(run, fields)
        fields["decision"] = decision[:300]
        if serves:
            _run_activate(run, scores, fields)
        else:
            _run_keep_unused(run, fields)
    except NotEnoughData as error:
        # What the data lacks, in words for the models page: not a fault, no traceback.
        log.info("model run %s refused: %s", run.pk, error)
        _run_fail(run, str(error))
    except Exception as error:
        log.exception("model run %s failed", run.pk)
        _run_fail(run, f"{error.__class__.__name__}: {error}")
    run.refresh_from_db()
    return run


def _run_fit(run: ModelRun, now: dt.datetime) -> tuple[dict[str, dict[int, float]], dict[str, Any]]:
    """Load the project's data and fit the run's kind: (scores by kind, then by profile id;
    run fields)."""
    from threadpoolctl import threadpool_limits

    def progress(percent: int, message: str) -> None:
        ModelRun.objects.filter(pk=run.pk).update(
            progress=percent, message=message[:300], status=ModelRun.Status.RUNNING
        )

    progress(5, "Loading events")
    fingerprint = data_fingerprint()
    orders, activity, lines = project_frames()
    progress(30, "Computing features")
    serving = _serving_run(run.kind)
    with threadpool_limits(limits=ML_THREADS):
        if run.kind == ModelRun.Kind.CLUSTER:
            outputs, fields = train_clusters(orders, activity, now, progress, serving=serving)
        else:
            outputs, fields = train_propensity(
                run.kind, orders, activity, now, progress, lines=lines, serving=serving
            )
    fields["data_hash"] = data_hash(orders, activity, lines)
    if run.kind != ModelRun.Kind.CLUSTER:
        # What the drift check compares today's scores with (services.model_drift).
        fields["score_reference"] = reference_distribution(list(outputs.values()))
    fields["metrics"]["fingerprint"] = fingerprint
    progress(90, "Writing scores")
    return {run.kind: outputs, **fields.pop("extra_scores", {})}, fields


def _serving_run(kind: str) -> ServingRun | None:
    """The configuration of the run that serves `kind`, which a new run must beat."""
    active = (
        ModelRun.objects.filter(kind=kind, is_active=True)
        .only("algorithm", "features", "metrics")
        .first()
    )
    if active is None or not active.algorithm:
        return None
    return {
        "run": active.pk,
        "algorithm": active.algorithm,
        "features": list(active.features),
        "k": active.metrics.get("k"),
    }


def _run_decision(run: ModelRun, fields: dict[str, Any]) -> tuple[bool, str]:
    """The activation guard (segments.ml.card): above the naive baseline on held-out data and
    above the serving run's configuration on the same data."""
    metrics = fields["metrics"]
    if run.kind == ModelRun.Kind.CLUSTER:
        return cluster_decision(
            silhouette=metrics.get("silhouette_held_out"),
            baseline=metrics.get("baseline_silhouette"),
            unchecked_reason=metrics.get("unchecked_reason", ""),
            serving=metrics.get("serving"),
        )
    return activation_decision(
        kind=run.kind,
        auc=metrics.get("auc_held_out"),
        baseline=metrics.get("baseline_auc"),
        unchecked_reason=metrics.get("unchecked_reason", ""),
        serving=metrics.get("serving"),
    )


def _run_activate(
    run: ModelRun, scores: dict[str, dict[int, float]], fields: dict[str, Any]
) -> None:
    """The run's scores replace those of their kinds, and it becomes its kind's active model
    (an earlier cluster run's names follow the clusters they describe)."""
    if run.kind == ModelRun.Kind.CLUSTER:
        _carry_cluster_names(fields["summary"])
    _serve(
        run,
        scores,
        status=ModelRun.Status.DONE,
        progress=100,
        message="Done",
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


@transaction.atomic
def _serve(run: ModelRun, scores: dict[str, dict[int, float]], **fields: Any) -> None:
    ProfileScore.objects.filter(kind__in=[run.kind, *scores]).delete()
    ProfileScore.objects.bulk_create(
        [
            ProfileScore(profile_id=pid, kind=kind, value=value, run=run)
            for kind, outputs in scores.items()
            for pid, value in outputs.items()
        ],
        batch_size=5000,
    )
    ModelRun.objects.filter(kind=run.kind, is_active=True).update(is_active=False)
    ModelRun.objects.filter(pk=run.pk).update(is_active=True, **fields)


class RollbackRefused(ValueError):
    """Said in words on the models page: why this run cannot serve."""


def model_rollback(
    *, run: ModelRun, actor: User | None, now: dt.datetime | None = None
) -> ModelRun:
    """Put an earlier run, or a challenger, back into service: today's profiles are scored by
    its saved artifact (as the drift check does) and those scores replace the serving run's.
    Refused for a run without a readable artifact, one whose artifact cannot score today's
    features, and one that was not above its naive baseline (never served, by hand either)."""
    from threadpoolctl import threadpool_limits

    run.refresh_from_db()
    if run.is_active:
        raise RollbackRefused(f"Run #{run.pk} already serves.")
    raw = ModelRun.objects.filter(pk=run.pk).values_list("artifact", flat=True).first()
    if run.status not in (ModelRun.Status.DONE, ModelRun.Status.NOT_USED) or not raw:
        raise RollbackRefused(f"Run #{run.pk} has no model to serve ({run.get_status_display()}).")
    below = below_baseline(kind=run.kind, metrics=run.metrics)
    if below:
        raise RollbackRefused(f"Run #{run.pk} never serves: {below}.")
    now = now or timezone.now()
    orders, activity, lines = project_frames()
    try:
        with threadpool_limits(limits=ML_THREADS):
            scores = scores_today(run.kind, bytes(raw), orders, activity, now, lines)
    except ValueError as error:  # another format, or today's features are not its own
        raise RollbackRefused(f"Run #{run.pk} cannot score today's profiles: {error}.") from None
    previous = ModelRun.objects.filter(kind=run.kind, is_active=True).first()
    by = getattr(actor, "username", "") or "the system"
    _serve(
        run,
        scores,
        status=ModelRun.Status.DONE,
        decision=(
            f"Serves by rollback{f' from run #{previous.pk}' if previous else ''}, by {by} on "
            f"{now:%Y-%m-%d %H:%M}; today's profiles scored by its saved model."
        )[:300],
    )
    audit_record(
        actor=actor,
        action="model.rollback",
        resource="model_runs",
        resource_id=run.pk,
        details={"kind": run.kind, "from_run": previous.pk if previous else None},
    )
    run.refresh_from_db()
    return run


def _run_keep_unused(run: ModelRun, fields: dict[str, Any]) -> None:
    """Recorded with its figures and the reason, never activated: the scores stay those of the
    active model."""
    ModelRun.objects.filter(pk=run.pk).update(
        status=ModelRun.Status.NOT_USED,
        progress=100,
        message="Not used",
        finished_at=timezone.now(),
        format_version=FORMAT_VERSION,
        **fields,
    )


def _carry_cluster_names(summary: list[dict[str, Any]]) -> None:
    """A name a marketer gave a cluster of the active run moves to the new cluster whose
    centroid is nearest (when the features are the same); the rest keep their description."""
    active = ModelRun.objects.filter(kind=ModelRun.Kind.CLUSTER, is_active=True).first()
    named = [row for row in (active.summary if active else []) if row["name"] != row["description"]]
    for old in named:
        if not summary or set(old["centroid"]) != set(summary[0]["centroid"]):
            return
        nearest = min(
            summary,
            key=lambda row: sum(
                (row["centroid"][f] - old["centroid"][f]) ** 2 for f in row["centroid"]
            ),
        )
        if nearest["name"] == nearest["description"]:
            nearest["name"] = old["name"]


def cluster_rename(*, run: ModelRun, cluster: int, name: str) -> ModelRun:
    """Name one cluster of a clustering run (a blank name restores its description)."""
    problem = unstorable(name)
    if problem:
        raise ValueError(f"The name cannot be stored: {problem}.")
    for row in run.summary:
        if row["id"] == cluster:
            row["name"] = name.strip()[:80] or row["description"]
            break
    else:
        raise ValueError(f"run {run.pk} has no cluster {cluster}")
    ModelRun.objects.filter(pk=run.pk).update(summary=run.summary)
    return run


def _run_fail(run: ModelRun, message: str) -> None:
    ModelRun.objects.filter(pk=run.pk).update(
        status=ModelRun.Status.FAILED, message=message[:300], finished_at=timezone.now()
    )
