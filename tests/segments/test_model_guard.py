"""The activation guard: a propensity run serves only when it beats its one-feature baseline on
the held-out period; otherwise it is kept as "not used" with the reason and the previous model
keeps serving. Young shops get BG/NBD scores and a predicted lifetime value."""

import datetime as dt
import math
import random

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from profiles.models import Event, Profile
from segments import services
from segments.ml.card import activation_decision
from segments.models import ProfileScore
from tests.segments.test_models import shop  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def _train(kind, capture, now=None):
    with capture(execute=False) as callbacks:
        run = services.model_train_request(kind=kind)
    assert callbacks
    return services.model_train(run_id=run.pk, now=now)


def _orders(source, profile, days_ago, now, tag):
    Event.objects.bulk_create(
        Event(
            source=source,
            message_id=f"{tag}-{profile.pk}-{i}",
            type="track",
            event="Order Completed",
            timestamp=now - dt.timedelta(days=d),
            received_at=now - dt.timedelta(days=d),
            properties={"revenue": 20.0},
            profile=profile,
        )
        for i, d in enumerate(days_ago)
    )


@pytest.fixture
def frequency_is_everything(source):
    """A shop where the order count alone tells who buys next: regulars order every 5 days,
    one-time buyers never come back. No model can beat frequency alone here (its AUC is 1)."""

    def build(now):
        Event.objects.all().delete()
        Profile.objects.all().delete()
        for i in range(30):
            regular = Profile.objects.create(traits={"kind": "regular"})
            _orders(source, regular, range(1 + i % 5, 300, 5), now, "r")
            once = Profile.objects.create(traits={"kind": "once"})
            _orders(source, once, [60 + 7 * i], now, "o")

    return build


def test_a_run_worse_than_its_baseline_is_kept_unused_and_the_previous_model_serves(
    shop,  # noqa: F811
    frequency_is_everything,
    django_capture_on_commit_callbacks,
):
    good = _train("purchase_30d", django_capture_on_commit_callbacks, now=shop)
    assert good.status == "done" and good.is_active, good.decision
    assert good.decision.startswith("Serves: held-out AUC")
    served = dict(ProfileScore.objects.filter(kind="purchase_30d").values_list("profile", "value"))

    frequency_is_everything(timezone.now())
    bad = _train("purchase_30d", django_capture_on_commit_callbacks)
    good.refresh_from_db()
    assert bad.status == "not_used" and not bad.is_active
    assert bad.metrics["baseline_auc"] == 1.0
    assert "is not above frequency alone (1.000)" in bad.decision
    assert good.is_active
    # The scores are still the good run's (the profiles it scored were deleted with the shop,
    # so none of the new shop's profiles has a score from the unused run).
    assert not ProfileScore.objects.filter(run=bad).exists()
    assert set(served) >= set(
        ProfileScore.objects.filter(kind="purchase_30d").values_list("profile", flat=True)
    )


def test_the_models_page_says_which_run_is_not_used_and_why(
    staff_client, marketer, frequency_is_everything, django_capture_on_commit_callbacks
):
    frequency_is_everything(timezone.now())
    run = _train("purchase_30d", django_capture_on_commit_callbacks)
    page = staff_client(marketer).get("/segments/models/").content.decode()
    assert "not used" in page and "is not above frequency alone" in page
    assert run.decision in page.replace("&#x27;", "'")


@given(
    auc=st.floats(0, 1),
    baseline=st.one_of(st.none(), st.floats(0, 1)),
    kind=st.sampled_from(["purchase_30d", "churn"]),
)
def test_the_guard_serves_only_a_run_above_its_baseline(auc, baseline, kind):
    serves, why = activation_decision(kind=kind, auc=auc, baseline=baseline)
    assert serves == (auc > (0.5 if baseline is None else baseline))
    assert why.startswith("Serves" if serves else "Not used")


def test_the_guard_refuses_a_run_without_a_held_out_figure_unless_it_says_why():
    assert activation_decision(kind="churn", auc=math.nan, baseline=None)[0] is False
    serves, why = activation_decision(
        kind="purchase_30d", auc=None, baseline=None, unchecked_reason="the shop is young"
    )
    assert serves and why == "Serves without a held-out check: the shop is young."


def test_a_young_shop_gets_bgnbd_scores_and_a_predicted_lifetime_value(
    source, django_capture_on_commit_callbacks
):
    now = timezone.now()
    rng = random.Random(5)
    # Four weeks of history: the supervised model has no cut-off with 30 days after it.
    for _ in range(40):
        profile = Profile.objects.create()
        first = rng.uniform(1, 28)
        rate = rng.choice([0.02, 0.1, 0.3])
        days = [first, *(d for d in range(int(first)) if rng.random() < rate)]
        _orders(source, profile, days, now, "y")
    run = _train("purchase_30d", django_capture_on_commit_callbacks, now=now)
    assert run.status == "done" and run.is_active and run.algorithm == "bg_nbd", run.message
    assert run.decision.startswith("Serves without a held-out check")
    assert "not enough history" in run.metrics["supervised_refused"]
    assert set(run.card["parameters"]) == {"r", "alpha", "a", "b"}
    scores = ProfileScore.objects.filter(kind="purchase_30d")
    assert scores.count() == 40 and all(0 < v < 1 for v in scores.values_list("value", flat=True))
    values = dict(ProfileScore.objects.filter(kind="predicted_ltv").values_list("profile", "value"))
    assert len(values) == 40 and all(v > 0 for v in values.values())


def test_the_profile_api_shows_the_serving_models_scores_and_cluster_names(
    shop,  # noqa: F811
    api_client_with_scopes,
    marketer,
    staff_client,
    django_capture_on_commit_callbacks,
):
    purchase = _train("purchase_30d", django_capture_on_commit_callbacks, now=shop)
    clusters = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    score = ProfileScore.objects.filter(kind="purchase_30d").first()
    cluster = int(ProfileScore.objects.get(kind="cluster", profile=score.profile).value)
    response = staff_client(marketer).post(
        f"/segments/models/{clusters.pk}/clusters/{cluster}/name/", {"name": "Loyal <b>fans</b>"}
    )
    assert response.status_code == 302
    reader = api_client_with_scopes("profiles:read")
    computed = reader.get(f"/api/v1/profiles/{score.profile_id}/").json()["computed"]
    assert purchase.is_active
    assert computed["propensity"] == {"purchase_30d": round(score.value, 4), "churn": None}
    assert computed["cluster"] == {"id": cluster, "name": "Loyal <b>fans</b>"}
    assert computed["predicted_lifetime_value"] > 0
    listed = reader.get("/api/v1/profiles/?limit=100").json()["results"]
    unscored = [p for p in listed if p["computed"]["cluster"] is None]
    assert all(p["computed"]["propensity"]["purchase_30d"] is None for p in unscored)


def test_only_marketers_and_admins_name_clusters(
    shop,  # noqa: F811
    compliance,
    staff_client,
    django_capture_on_commit_callbacks,
):
    run = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    url = f"/segments/models/{run.pk}/clusters/0/name/"
    assert staff_client(compliance).post(url, {"name": "x"}).status_code == 403
    run.refresh_from_db()
    assert run.summary[0]["name"] == run.summary[0]["description"]


def test_a_cluster_name_the_database_cannot_hold_is_a_400(
    shop,  # noqa: F811
    marketer,
    staff_client,
    django_capture_on_commit_callbacks,
):
    run = _train("cluster", django_capture_on_commit_callbacks, now=shop)
    url = f"/segments/models/{run.pk}/clusters/0/name/"
    response = staff_client(marketer).post(url, {"name": "\x00bad"})
    assert response.status_code == 400 and "NUL" in response.content.decode()
    run.refresh_from_db()
    assert run.summary[0]["name"] == run.summary[0]["description"]
