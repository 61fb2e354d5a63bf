"""The drift check of the serving recommender (beat, once a day).

Scores: the people with an interaction in the last 30 days of today's data (at most
RECS_DRIFT_SAMPLE, in a stable order; recommenders.drift), their histories as they are today,
scored by the serving run's saved model: the ten best items of each one's `home` list. At
training the run kept the same figure for the same kind of sample of its training data, in
decile bins (`ModelRun.score_reference`); today's scores in those bins against the training
shares give the population stability index (segments.ml.drift). It moves when people's
histories move away from what the model learned from (new items it does not know, new
behaviour, a different mix of people), not with the clock alone.

Online outcome: recommendation blocks rendered in sent messages and the ones a person clicked
(bots apart), per run, from the sources registered in recommendations.outcomes.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from recommendations.models import ModelDrift
from recommendations.outcomes import run_outcome
from recommendations.recommenders.base import ml_threads
from recommendations.recommenders.drift import drift_scores
from recommendations.selectors import serving_run, training_data
from recommendations.serving import serving_bundle
from segments.ml.drift import binned_shares, psi


def recommender_drift_check(*, now: dt.datetime | None = None) -> ModelDrift | None:
    """Record today's drift of the serving run (one row per run and day: checking twice on
    a day rewrites it); None when no run serves."""
    now = now or timezone.now()
    run = serving_run()
    loaded = serving_bundle()
    if run is None or loaded is None or loaded[0] != run.pk:
        return None
    figures: dict[str, object] = {"psi": None, "shares": [], "scored": 0}
    reference = run.score_reference
    if reference.get("shares"):
        bundle = loaded[1]
        with ml_threads():
            data = training_data(item_keys=bundle.item_keys)
            scores = drift_scores(bundle.model, data, limit=settings.RECS_DRIFT_SAMPLE)
        shares = binned_shares(scores, reference["edges"])
        figures = {
            "psi": round(psi(reference["shares"], shares), 4),
            "shares": [round(s, 4) for s in shares],
            "scored": len(scores),
        }
    impressions, clicks = run_outcome(run_id=run.pk)
    check, _ = ModelDrift.objects.update_or_create(
        run=run,
        day=now.date(),
        defaults={**figures, "impressions": impressions, "clicks": clicks, "checked_at": now},
    )
    return check
