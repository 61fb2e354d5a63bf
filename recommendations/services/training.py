"""Training runs and the model registry: champion and challengers.

A run (`model_train`, on the ml queue):
1. loads the interactions that may train models (selectors.training_data: the
   `personalization` consent gate, merged profiles as one);
2. is skipped when a finished run of the same kind and parameters saw the same data (hash);
3. is evaluated on a validation window, the last RECS_VALIDATION_DAYS of the data: fitted on
   what came before, scored on the people who then took up new items (discovery protocol),
   beside the serving model's kind and parameters and recent popularity fitted on the same
   data, with a paired bootstrap interval of its NDCG@10 against the serving model's;
4. is fitted on all the data, and its artifact saved (format version and data hash inside);
5. keeps the scores its model gives recently active people, in decile bins, for the drift
   check (services.drift);
6. takes over serving only when it beats the serving model on that window (NDCG@10 higher,
   the interval's lower bound above zero) and is not below recent popularity; otherwise it
   is kept as a challenger and `decision_reason` says why.

`model_rollback` puts any earlier run with a readable artifact back into service.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access.services import audit_record
from recommendations import cache
from recommendations.models import ModelRun
from recommendations.recommenders import KINDS, UnknownKind, build, params_check
from recommendations.recommenders.artifacts import (
    FORMAT_VERSION,
    ArtifactFormatError,
    bundle_dump,
    bundle_fit,
    bundle_load,
    data_hash,
)
from recommendations.recommenders.base import TrainingData, ml_threads
from recommendations.recommenders.drift import drift_scores
from recommendations.recommenders.evaluation import (
    Evaluation,
    evaluate,
    window_split,
)
from recommendations.selectors import training_data
from segments.ml.comparison import paired_bootstrap
from segments.ml.drift import reference_distribution

logger = logging.getLogger(__name__)


class NotEnoughData(ValueError):
    """Said in words on the run: what is missing before a model can be judged."""


def model_train_request(*, kind: str, params: dict[str, Any] | None = None, actor: Any) -> ModelRun:
    """Record a queued run; the caller queues `model_train_task` after commit."""
    if kind not in KINDS:
        raise UnknownKind(f"unknown recommender {kind!r}; known: {', '.join(KINDS)}")
    params_check(kind, params or {})  # refused now rather than when the worker trains
    return ModelRun.objects.create(
        kind=kind,
        params=params or {},
        requested_by=actor if getattr(actor, "pk", None) else None,
    )


def model_train(*, run: ModelRun, data: TrainingData | None = None) -> ModelRun:
    """Run a queued training to its end (see the module docstring). Claimed with a
    conditional update, so a redelivered task does not train twice."""
    claimed = ModelRun.objects.filter(pk=run.pk, status=ModelRun.Status.QUEUED).update(
        status=ModelRun.Status.RUNNING, started_at=timezone.now()
    )
    run.refresh_from_db()
    if not claimed:
        return run
    try:
        with ml_threads():
            _train(run, data if data is not None else training_data())
    except NotEnoughData as error:
        run.status, run.message = ModelRun.Status.FAILED, str(error)[:500]
        logger.info("recommender run %s: not enough data (%s)", run.pk, error)
    except Exception as error:
        run.status = ModelRun.Status.FAILED
        run.message = f"Training failed: {type(error).__name__}"[:500]
        logger.exception("recommender run %s failed", run.pk)
    run.finished_at = timezone.now()
    run.save()
    return run


def _progress(run: ModelRun, percent: int, message: str) -> None:
    run.progress, run.message = percent, message
    ModelRun.objects.filter(pk=run.pk).update(progress=percent, message=message)


def _train(run: ModelRun, data: TrainingData) -> None:
    if data.n_users == 0:
        raise NotEnoughData(
            "No interactions yet from profiles that allow personalization: products viewed, "
            "added to cart or bought (Segment e-commerce events) train the models."
        )
    run.format_version = FORMAT_VERSION
    run.data_hash = data_hash(data, {"kind": run.kind, **run.params})
    same = (
        ModelRun.objects.filter(
            kind=run.kind,
            data_hash=run.data_hash,
            format_version=FORMAT_VERSION,
            status=ModelRun.Status.DONE,
        )
        .exclude(pk=run.pk)
        .order_by("-id")
        .first()
    )
    if same is not None:
        run.status = ModelRun.Status.SKIPPED
        run.message = f"Skipped: same data and parameters as run {same.pk}."
        return
    _progress(run, 10, "Evaluating on the validation window")
    run.metrics = _validate(run, data)
    _progress(run, 60, "Fitting on all the data")
    started = time.perf_counter()
    bundle = bundle_fit(kind=run.kind, params=run.params, data=data, digest=run.data_hash)
    run.training_seconds = round(time.perf_counter() - started, 2)
    run.params = {**run.params, "fitted": bundle.model.params}
    run.artifact = bundle_dump(bundle)
    # What the drift check compares today's scores with (services.drift).
    run.score_reference = reference_distribution(
        drift_scores(bundle.model, data, limit=settings.RECS_DRIFT_SAMPLE)
    )
    run.status = ModelRun.Status.DONE
    run.progress = 100
    _decide(run)


def _validate(run: ModelRun, data: TrainingData) -> dict[str, Any]:
    days = settings.RECS_VALIDATION_DAYS
    split = window_split(data, days=days)
    if len(split.rows) == 0:
        raise NotEnoughData(
            f"Nobody with earlier history took up a new item in the last {days:g} days of the "
            "data: there is nothing to judge a model on yet."
        )
    candidate = _scored(build(run.kind, run.params), split)
    popularity = _scored(build("popularity"), split)
    metrics: dict[str, Any] = {
        "window": {
            "start": (data.now - timedelta(days=days)).isoformat(),
            "end": data.now.isoformat(),
        },
        "people": len(split.rows),
        "validation": _summary(candidate),
        "popularity": _summary(popularity),
    }
    champion = ModelRun.objects.filter(is_serving=True).only("pk", "kind", "params").first()
    if champion is not None:
        params = {k: v for k, v in champion.params.items() if k != "fitted"}
        serving = _scored(build(champion.kind, params), split)
        metrics["champion"] = {"run": champion.pk, **_summary(serving)}
        metrics["bootstrap"] = paired_bootstrap(candidate.per_person, serving.per_person)
    return metrics


def _scored(model: Any, split: Any) -> Evaluation:
    model.fit(split.train)
    return evaluate(model, split)


def _summary(evaluation: Evaluation) -> dict[str, float]:
    return {**evaluation.metrics, "coverage": evaluation.coverage}


def _decide(run: ModelRun) -> None:
    metrics = run.metrics
    ours = metrics["validation"]["ndcg"]
    floor = metrics["popularity"]["ndcg"]
    if ours < floor:
        run.decision = ModelRun.Decision.CHALLENGER
        run.decision_reason = (
            f"NDCG@10 {ours:.3f} is below recent popularity's {floor:.3f} on the same window: "
            "a model below popularity is never promoted."
        )
        return
    champion = metrics.get("champion")
    if champion is not None:
        interval = metrics["bootstrap"]
        words = (
            f"NDCG@10 {ours:.3f} against the serving run {champion['run']}'s "
            f"{champion['ndcg']:.3f} (difference {interval['mean']:+.3f}, 95% CI "
            f"{interval['low']:+.3f} to {interval['high']:+.3f})"
        )
        if interval["low"] <= 0:
            run.decision = ModelRun.Decision.CHALLENGER
            run.decision_reason = f"{words}: not better beyond doubt, kept as challenger."
            return
        run.decision_reason = f"{words}: better, promoted."
    else:
        run.decision_reason = (
            f"NDCG@10 {ours:.3f}, recent popularity {floor:.3f}; no model was serving: promoted."
        )
    run.decision = ModelRun.Decision.PROMOTED
    _serve(run)
    audit_record(
        actor=run.requested_by,
        action="promote",
        resource="recommender",
        resource_id=run.pk,
        details={"kind": run.kind, "ndcg_at_10": round(ours, 4)},
    )


def _serve(run: ModelRun) -> None:
    with transaction.atomic():
        ModelRun.objects.filter(is_serving=True).exclude(pk=run.pk).update(is_serving=False)
        ModelRun.objects.filter(pk=run.pk).update(is_serving=True)
        run.is_serving = True
    transaction.on_commit(cache.all_invalidate)


class RollbackRefused(ValueError):
    pass


def model_rollback(*, run: ModelRun, actor: Any) -> ModelRun:
    """Put an earlier run (or a challenger) into service; refused for a run without a
    readable artifact (failed, skipped, or saved in another format) and for a run that was
    below recent popularity on its validation window: such a model is never promoted, by
    hand either."""
    raw = ModelRun.objects.filter(pk=run.pk).values_list("artifact", flat=True).first()
    if run.status != ModelRun.Status.DONE or not raw:
        raise RollbackRefused(f"Run {run.pk} has no model to serve ({run.get_status_display()}).")
    ours, floor = run.ndcg, run.metrics.get("popularity", {}).get("ndcg")
    if ours is not None and floor is not None and ours < floor:
        raise RollbackRefused(
            f"Run {run.pk}'s NDCG@10 {ours:.3f} is below recent popularity's {floor:.3f} on its "
            "validation window: a model below popularity is never promoted."
        )
    try:
        bundle_load(bytes(raw))
    except ArtifactFormatError as error:
        raise RollbackRefused(f"Run {run.pk} cannot serve: {error}.") from None
    previous = ModelRun.objects.filter(is_serving=True).values_list("pk", flat=True).first()
    _serve(run)
    audit_record(
        actor=actor,
        action="rollback",
        resource="recommender",
        resource_id=run.pk,
        details={"from_run": previous, "kind": run.kind},
    )
    return run


def models_retrain_scheduled(*, actor: Any = None) -> ModelRun:
    """Beat: a queued run of the kind that serves (the hybrid when none does)."""
    serving = ModelRun.objects.filter(is_serving=True).only("kind", "params").first()
    kind = serving.kind if serving else settings.RECS_DEFAULT_KIND
    params = {k: v for k, v in (serving.params if serving else {}).items() if k != "fitted"}
    return model_train_request(kind=kind, params=params, actor=actor)
