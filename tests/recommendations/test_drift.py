"""Drift of the serving recommender: the scores a run keeps at training, the daily check of
today's scores against them (real training, real serving artifact), and the warning on the
models page."""

from __future__ import annotations

import pytest

from recommendations import tasks
from recommendations.models import ModelDrift
from recommendations.selectors import serving_run
from recommendations.services import recommender_drift_check
from tests.recommendations.conftest import buy

pytestmark = pytest.mark.django_db


def test_a_run_keeps_its_training_scores_in_deciles(served):
    reference = serving_run().score_reference
    # Ten best items for each of the 40 people, all active in the last 80 days (30 kept).
    assert 0 < reference["count"] <= 10 * len(served.people)
    assert sum(reference["shares"]) == pytest.approx(1.0)
    assert len(reference["shares"]) == len(reference["edges"]) + 1 >= 5


def test_the_beat_check_finds_todays_people_as_at_training_and_records_once_a_day(
    served, staff_client, marketer
):
    tasks.model_drift_check_task()
    tasks.model_drift_check_task()
    check = ModelDrift.objects.get()
    print(f"recommender PSI, same people: {check.psi}")
    assert check.psi is not None and check.psi < 0.1, check.shares
    assert check.scored > 0 and check.impressions == 0 and check.ctr is None
    page = staff_client(marketer).get("/recommendations/models/").content.decode()
    assert "drift-warning" not in page and f"PSI {check.psi:.3f}: stable" in page


def test_people_whose_tastes_changed_are_a_drift_the_page_warns_about(
    served, source, staff_client, compliance, no_role_user
):
    # Every garden person now buys kitchen items, and the other way round.
    for user_id in served.people:
        other = "b" if "-A-" in user_id else "a"
        buy(source, user_id, [f"{other}{i}" for i in range(1, 8)], days_ago=0.5)
    check = recommender_drift_check()
    print(f"recommender PSI after the swap of tastes: {check.psi}")
    assert check.psi is not None and check.psi > 0.2, check.shares
    page = staff_client(compliance).get("/recommendations/models/").content.decode()
    assert "drift-warning" in page and f"PSI {check.psi:.3f}: a significant shift" in page
    assert staff_client(no_role_user).get("/recommendations/models/").status_code in (302, 403)
