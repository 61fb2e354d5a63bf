"""The promotion guard of clustering and propensity runs: a run serves only when it beats a
naive baseline on held-out data and the serving run's configuration refitted on the same data
(a paired bootstrap interval above zero); otherwise it is kept as a challenger, saying why.
Any earlier run can be put back into service in one click, except one below its baseline."""

import datetime as dt
import math

import numpy as np
import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from access.models import AuditLog
from profiles.models import Event, Profile
from segments import services
from segments.ml.card import cluster_decision
from segments.ml.comparison import paired_bootstrap_auc
from segments.models import ModelRun, ProfileScore
from tests.segments.test_models import shop  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _train(kind, capture, now=None):
    with capture(execute=False):
        run = services.model_train_request(kind=kind)
    return services.model_train(run_id=run.pk, now=now)


def _scored_by(kind):
    return set(ProfileScore.objects.filter(kind=kind).values_list("run_id", flat=True))


@pytest.fixture
def recency_is_everything(source):
    """Sixty customers alike in all but when they last ordered (40 or 200 days ago): k-means
    can only rediscover the two recency alone a naive RFM table gives."""
    now = timezone.now()
    for i in range(60):
        profile = Profile.objects.create()
        at = now - dt.timedelta(days=40 if i % 2 else 200)
        Event.objects.create(
            source=source,
            message_id=f"r{i}",
            type="track",
            event="Order Completed",
            timestamp=at,
            received_at=at,
            properties={"revenue": 20.0, "category": "Hats"},
            profile=profile,
        )
    return now


def test_a_clustering_no_better_than_recency_alone_is_not_used_nor_rolled_back_to(
    recency_is_everything, marketer, django_capture_on_commit_callbacks
):
    run = _train("cluster", django_capture_on_commit_callbacks, now=recency_is_everything)
    assert run.status == "not_used" and not run.is_active, (run.metrics, run.decision)
    assert run.metrics["held_out_profiles"] == 12
    assert run.metrics["silhouette_held_out"] <= run.metrics["baseline_silhouette"]
    assert "is not above recency alone" in run.decision
    assert not ProfileScore.objects.filter(kind="cluster").exists()
    with pytest.raises(services.RollbackRefused, match="never serves"):
        services.model_rollback(run=run, actor=marketer)
    assert not ModelRun.objects.filter(kind="cluster", is_active=True).exists()


def test_identical_profiles_are_refused_in_words(source, django_capture_on_commit_callbacks):
    now = timezone.now()
    for i in range(20):
        Event.objects.create(
            source=source,
            message_id=f"same{i}",
            type="track",
            event="Product Viewed",
            timestamp=now - dt.timedelta(days=3),
            received_at=now,
            properties={},
            profile=Profile.objects.create(),
        )
    run = _train("cluster", django_capture_on_commit_callbacks, now=now)
    assert run.status == "failed" and "same features" in run.message


def test_a_clustering_serves_above_its_baseline_and_a_refit_of_its_k_replaces_it(
    shop,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    first = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    assert first.is_active, first.decision
    assert first.metrics["silhouette_held_out"] > first.metrics["baseline_silhouette"]
    assert first.decision.startswith("Serves: held-out silhouette")
    second = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    first.refresh_from_db()
    assert second.metrics["serving"]["run"] == first.pk
    assert second.metrics["serving"]["same_configuration"]
    assert second.is_active and not first.is_active
    assert f"the serving run #{first.pk}'s configuration refitted" in second.decision
    assert _scored_by("cluster") == {second.pk}


def test_a_clustering_against_another_k_serves_only_when_its_interval_is_above_zero(
    shop,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    first = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    # The serving configuration is another k than the one the candidate will choose.
    other = 2 if first.metrics["k"] != 2 else 3
    ModelRun.objects.filter(pk=first.pk).update(metrics={**first.metrics, "k": other})
    second = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    serving = second.metrics["serving"]
    assert serving["run"] == first.pk and serving["k"] == other
    assert not serving["same_configuration"]
    interval = serving["bootstrap"]
    assert interval["low"] <= interval["mean"] <= interval["high"]
    assert interval["mean"] == pytest.approx(
        second.metrics["silhouette_held_out"] - serving["figure"], abs=2e-4
    )
    assert f"95% CI {interval['low']:+.3f} to {interval['high']:+.3f}" in second.decision
    beats = interval["low"] > 0
    assert second.is_active == beats
    assert _scored_by("cluster") == {second.pk if beats else first.pk}
    if not beats:
        assert second.status == "not_used" and "kept as a challenger" in second.decision


def test_rollback_puts_an_earlier_run_back_and_scores_todays_profiles_with_it(
    shop,  # noqa: F811
    marketer,
    django_capture_on_commit_callbacks,
):
    first = _train("purchase_30d", django_capture_on_commit_callbacks, now=shop)
    second = _train("purchase_30d", django_capture_on_commit_callbacks, now=shop)
    assert second.is_active and _scored_by("purchase_30d") == {second.pk}
    back = services.model_rollback(run=first, actor=marketer, now=shop)
    second.refresh_from_db()
    assert back.is_active and back.status == "done" and not second.is_active
    assert back.decision.startswith(f"Serves by rollback from run #{second.pk}, by marketer")
    assert _scored_by("purchase_30d") == {first.pk}
    assert _scored_by("predicted_ltv") == {first.pk}
    assert (
        ProfileScore.objects.filter(kind="purchase_30d").count()
        == (first.metrics["scored_profiles"])
    )
    row = AuditLog.objects.get(action="model.rollback")
    assert row.resource_id == str(first.pk) and row.details["from_run"] == second.pk
    with pytest.raises(services.RollbackRefused, match="already serves"):
        services.model_rollback(run=back, actor=marketer)


def test_a_clustering_cannot_come_back_once_the_features_changed(
    shop,  # noqa: F811
    source,
    marketer,
    django_capture_on_commit_callbacks,
):
    first = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    Event.objects.bulk_create(
        Event(
            source=source,
            message_id=f"bag{i}",
            type="track",
            event="Product Viewed",
            timestamp=shop - dt.timedelta(days=1),
            received_at=shop,
            properties={"category": "Bags"},
            profile=profile,
        )
        for i, profile in enumerate(Profile.objects.all()[:30])
    )
    second = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    assert "affinity:Bags" in second.features
    if not second.is_active:  # the guard kept the first serving: make the second serve
        services.model_rollback(run=second, actor=marketer, now=shop)
    with pytest.raises(services.RollbackRefused, match="features are not those"):
        services.model_rollback(run=first, actor=marketer, now=shop)
    assert _scored_by("cluster") == {second.pk}


def test_propensity_against_a_serving_run_with_other_features_shows_its_interval(
    shop,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    orders = list(Event.objects.filter(event="Order Completed"))
    products = {order.pk: order.properties.pop("products") for order in orders}
    Event.objects.bulk_update(orders, ["properties"])
    first = _train("purchase_30d", django_capture_on_commit_callbacks, now=shop)
    assert first.is_active and "product_growth" not in first.features
    for order in orders:
        order.properties["products"] = products[order.pk]
    Event.objects.bulk_update(orders, ["properties"])
    second = _train("purchase_30d", django_capture_on_commit_callbacks, now=shop)
    serving = second.metrics["serving"]
    assert serving["run"] == first.pk and not serving["same_configuration"]
    assert "product_growth" in second.features
    interval = serving["bootstrap"]
    assert interval["low"] <= interval["high"]
    above_baseline = second.metrics["auc_held_out"] > second.metrics["baseline_auc"]
    assert second.is_active == (above_baseline and interval["low"] > 0)
    first.refresh_from_db()
    assert first.is_active != second.is_active


def test_only_marketers_and_admins_roll_back_and_a_refusal_is_said_on_the_page(
    recency_is_everything,
    marketer,
    compliance,
    staff_client,
    django_capture_on_commit_callbacks,
):
    run = _train("cluster", django_capture_on_commit_callbacks, now=recency_is_everything)
    url = f"/segments/models/{run.pk}/rollback/"
    assert staff_client(compliance).post(url).status_code == 403
    client = staff_client(marketer)
    page = client.get("/segments/models/").content.decode()
    assert f'action="{url}"' in page and "Against the serving run" in page
    response = client.post(url, follow=True)
    assert response.status_code == 200
    assert f"Run #{run.pk} never serves" in response.content.decode()
    assert client.get(url).status_code == 405
    assert client.post("/segments/models/999999/rollback/").status_code == 404


@given(
    figure=st.floats(-1, 1),
    baseline=st.one_of(st.none(), st.floats(-1, 1)),
    serving=st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {
                "run": st.integers(1, 99),
                "figure": st.floats(-1, 1),
                "same_configuration": st.booleans(),
                "bootstrap": st.tuples(st.floats(-1, 1), st.floats(-1, 1)).map(
                    lambda pair: {"mean": sum(pair) / 2, "low": min(pair), "high": max(pair)}
                ),
            }
        ),
    ),
)
def test_a_clustering_serves_only_above_its_baseline_and_the_serving_run(figure, baseline, serving):
    serves, why = cluster_decision(silhouette=figure, baseline=baseline, serving=serving)
    above = figure > (0.0 if baseline is None else baseline)
    beats = serving is None or serving["same_configuration"] or serving["bootstrap"]["low"] > 0
    assert serves == (above and beats)
    assert why.startswith("Serves" if serves else "Not used")
    if above and not beats:
        assert f"run #{serving['run']} keeps serving" in why


def test_the_guard_refuses_a_clustering_without_a_held_out_figure_unless_it_says_why():
    assert cluster_decision(silhouette=math.nan, baseline=0.2)[0] is False
    serves, why = cluster_decision(silhouette=None, baseline=None, unchecked_reason="12 profiles")
    assert serves and why == "Serves without a held-out check: 12 profiles."


def test_the_auc_interval_is_zero_for_the_same_scores_and_above_zero_for_a_better_one():
    rng = np.random.default_rng(3)
    outcomes = rng.integers(0, 2, 400)
    noise = rng.normal(size=400)
    informed = outcomes + rng.normal(scale=0.8, size=400)
    same = paired_bootstrap_auc(outcomes, noise, noise)
    assert same == {"mean": 0.0, "low": 0.0, "high": 0.0}
    better = paired_bootstrap_auc(outcomes, informed, noise)
    assert better["low"] > 0 and better["low"] <= better["mean"] <= better["high"]
    assert paired_bootstrap_auc(np.ones(5), noise[:5], noise[:5])["mean"] == 0.0
