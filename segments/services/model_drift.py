"""Model drift of the serving propensity models: today's profiles scored by the serving run,
against the scores that run gave at training (population stability index, segments.ml.drift).

The run's training scores are kept as decile bins (`ModelRun.score_reference`). Today, the
same customers' features are recomputed from today's events (or, for BG/NBD, today's repeat
buying summary) and scored with the run's saved artifact: what the run would answer if it were
retrained on nothing new. The shares of those scores in the training bins, against the
training shares, give the PSI. A shift means the people have changed (recency grew, new
customers, a change in buying) since the model learned, not that its code changed.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.utils import timezone

from segments.ml.drift import binned_shares, psi
from segments.ml.training import ML_THREADS, project_frames, propensity_scores_today
from segments.models import ModelDrift, ModelRun
from segments.selectors import PROPENSITY_KINDS

log = logging.getLogger(__name__)


def propensity_drift_check(*, now: dt.datetime | None = None) -> list[ModelDrift]:
    """Record today's PSI of every serving propensity run that kept its training scores
    (one row per run and day: checking twice on a day rewrites the day's row)."""
    from threadpoolctl import threadpool_limits

    now = now or timezone.now()
    runs = [
        run
        for run in ModelRun.objects.filter(kind__in=PROPENSITY_KINDS, is_active=True)
        if run.score_reference.get("shares") and run.artifact
    ]
    if not runs:
        return []
    orders, activity, lines = project_frames()
    checks = []
    for run in runs:
        with threadpool_limits(limits=ML_THREADS):
            try:
                scores = list(
                    propensity_scores_today(
                        bytes(run.artifact or b""), orders, activity, now, lines
                    ).values()
                )
            except ValueError as error:  # an artifact saved in another format
                log.warning("drift of model run %s not checked: %s", run.pk, error)
                continue
        reference = run.score_reference
        shares = binned_shares(scores, reference["edges"])
        check, _ = ModelDrift.objects.update_or_create(
            run=run,
            day=now.date(),
            defaults={
                "psi": round(psi(reference["shares"], shares), 4),
                "shares": [round(s, 4) for s in shares],
                "scored": len(scores),
                "checked_at": now,
            },
        )
        checks.append(check)
    return checks
