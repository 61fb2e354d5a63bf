"""Model drift of the propensity models: the population stability index (a pure core, known
cases and properties), the scores a run keeps at training, the daily check through the real
training and scoring services, and the warning on the models page."""

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segments import services, tasks
from segments.ml.drift import (
    SHARE_FLOOR,
    binned_shares,
    drift_status,
    psi,
    reference_distribution,
)
from segments.models import ModelDrift
from tests.segments.test_models import _train, shop  # noqa: F401 - the shop fixture


def test_psi_of_identical_shares_is_zero():
    assert psi([0.1] * 10, [0.1] * 10) == 0.0


def test_psi_of_a_known_shift():
    # (0.9 - 0.5) ln(0.9 / 0.5) + (0.1 - 0.5) ln(0.1 / 0.5)
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * math.log(1.8) + 0.4 * math.log(5))
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.8789, abs=1e-4)


def test_an_emptied_bin_counts_at_the_floor_not_infinity():
    expected = 0.5 * math.log(2) + (SHARE_FLOOR - 0.5) * math.log(SHARE_FLOOR / 0.5)
    assert psi([0.5, 0.5], [1.0, 0.0]) == pytest.approx(expected)
    assert math.isfinite(psi([0.0, 1.0], [1.0, 0.0]))


def test_shares_of_different_bins_are_refused():
    with pytest.raises(ValueError, match="2 expected shares against 3"):
        psi([0.5, 0.5], [0.2, 0.3, 0.5])


def test_deciles_of_a_uniform_sample_hold_a_tenth_each():
    reference = reference_distribution([i / 100 for i in range(100)])
    assert len(reference["edges"]) == 9 and reference["count"] == 100
    assert reference["shares"] == pytest.approx([0.1] * 10)
    assert binned_shares([0.995] * 5, reference["edges"]) == [0.0] * 9 + [1.0]


def test_tied_scores_make_fewer_bins():
    reference = reference_distribution([0.2] * 50 + [0.7] * 50)
    assert reference["edges"] == [0.2] and reference["shares"] == [0.5, 0.5]


def test_the_reading_of_a_figure():
    assert drift_status(0.05, threshold=0.2)["warning"] is False
    assert "stable" in drift_status(0.05, threshold=0.2)["words"]
    assert "moderate" in drift_status(0.15, threshold=0.2)["words"]
    high = drift_status(0.31, threshold=0.2)
    assert high["warning"] and "significant" in high["words"] and "0.310" in high["words"]


shares_lists = st.lists(st.floats(0, 1), min_size=1, max_size=20)


@given(expected=shares_lists, actual=shares_lists)
def test_psi_is_never_negative(expected, actual):
    n = min(len(expected), len(actual))
    assert psi(expected[:n], actual[:n]) >= 0


@given(values=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=300))
def test_a_sample_against_its_own_bins_does_not_drift(values):
    reference = reference_distribution(values)
    assert sum(reference["shares"]) == pytest.approx(1.0)
    assert psi(reference["shares"], binned_shares(values, reference["edges"])) == 0.0


pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_a_propensity_run_keeps_its_training_scores_in_deciles(
    shop,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    run = _train("purchase_30d", django_capture_on_commit_callbacks)
    assert run.status == "done", run.message
    reference = run.score_reference
    assert reference["count"] == run.metrics["scored_profiles"]
    assert sum(reference["shares"]) == pytest.approx(1.0)
    assert len(reference["shares"]) == len(reference["edges"]) + 1 >= 5


@pytestmark_db
def test_the_beat_check_records_no_drift_for_todays_population_once_a_day(
    shop,  # noqa: F811
    django_capture_on_commit_callbacks,
    staff_client,
    marketer,
):
    run = _train("purchase_30d", django_capture_on_commit_callbacks)
    tasks.model_drift_check_task()
    tasks.model_drift_check_task()  # twice on a day: one row, rewritten
    check = ModelDrift.objects.get()
    assert check.run == run and check.scored == run.metrics["scored_profiles"]
    print(f"propensity PSI, same day: {check.psi}")
    assert check.psi < 0.1, check.shares
    page = staff_client(marketer).get("/segments/models/").content.decode()
    assert "drift-warning" not in page
    assert f"PSI {check.psi:.3f}: stable" in page


@pytestmark_db
def test_customers_gone_quiet_for_months_are_a_drift_the_page_warns_about(
    shop,  # noqa: F811
    django_capture_on_commit_callbacks,
    staff_client,
    compliance,
    no_role_user,
):
    run = _train("purchase_30d", django_capture_on_commit_callbacks)
    # Nobody has bought anything for four months: every customer's recency has grown.
    later = shop + dt.timedelta(days=120)
    tasks.model_drift_check_task()  # today: stable
    [check] = services.propensity_drift_check(now=later)
    print(f"propensity PSI, 120 days without orders: {check.psi}")
    assert check.run == run and check.psi > 0.2, check.shares
    assert check.day == later.date()
    page = staff_client(compliance).get("/segments/models/").content.decode()
    assert "drift-warning" in page and f"PSI {check.psi:.3f}: a significant shift" in page
    # PSI over time: one point per day checked.
    assert 'data-chart-data="drift-chart"' in page and later.date().isoformat() in page
    refused = staff_client(no_role_user).get("/segments/models/")
    assert refused.status_code in (302, 403)
