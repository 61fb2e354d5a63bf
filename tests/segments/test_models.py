"""Clustering and propensity: trained through the task, recorded with metrics, features, format
version and data hash; the previous model kept; outputs usable in conditions."""

import datetime as dt
import io
import random

import joblib
import pytest
from django.utils import timezone

from profiles.models import Event, Profile
from segments import services
from segments.compiler import base_profiles, compile_definition
from segments.ml.artifacts import FORMAT_VERSION
from segments.ml.clustering import describe_centroid
from segments.ml.training import project_frames
from segments.models import ModelRun, ProfileScore
from tests.segments.conftest import make_profile

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(source):
    rng = random.Random(3)
    now = timezone.now()
    events = []
    for i in range(80):
        profile = Profile.objects.create(traits={"n": i})
        loyal = i % 3 == 0
        for n in range(rng.randint(1, 25 if loyal else 5)):
            at = now - dt.timedelta(days=rng.uniform(0, 200 if loyal else 300))
            name = "Order Completed" if rng.random() < (0.5 if loyal else 0.2) else "Product Viewed"
            lines = [{"product_id": f"p{n % 4}", "price": 10.0, "quantity": 1 + n % 3}]
            events.append(
                Event(
                    source=source,
                    message_id=f"m{i}-{n}",
                    type="track",
                    event=name,
                    timestamp=at,
                    received_at=at,
                    properties={
                        "revenue": rng.uniform(10, 200),
                        "category": rng.choice(["Shoes", "Hats"]),
                        **({"products": lines} if name == "Order Completed" else {}),
                    },
                    profile=profile,
                )
            )
    Event.objects.bulk_create(events)
    return now


def _train(kind, capture):
    with capture(execute=True):
        run = services.model_train_request(kind=kind)
    run.refresh_from_db()
    return run


def test_clustering_chooses_k_by_silhouette_describes_clusters_and_scores_profiles(
    shop, django_capture_on_commit_callbacks
):
    run = _train("cluster", django_capture_on_commit_callbacks)
    assert run.status == "done" and run.is_active and run.progress == 100, run.message
    assert 2 <= run.metrics["k"] <= 8 and -1 <= run.metrics["silhouette"] <= 1
    assert run.features[:3] == ["recency", "frequency", "monetary"]
    assert len(run.summary) == run.metrics["k"] and all(row["description"] for row in run.summary)
    assert len(run.data_hash) == 64
    artifact = joblib.load(io.BytesIO(bytes(run.artifact)))
    assert artifact["format_version"] == FORMAT_VERSION
    assert ProfileScore.objects.filter(kind="cluster").count() == 80
    members = base_profiles().filter(compile_definition({"cluster": 0}, now=shop))
    assert members.count() == run.summary[0]["size"]


def test_propensity_reports_held_out_auc_and_keeps_the_previous_model(
    shop, django_capture_on_commit_callbacks
):
    first = _train("purchase_30d", django_capture_on_commit_callbacks)
    assert first.status == "done", first.message
    assert 0 <= first.metrics["auc_held_out"] <= 1 and first.metrics["test_rows"] > 0
    assert "recency" in first.features and "product_growth" in first.features
    second = _train("purchase_30d", django_capture_on_commit_callbacks)
    first.refresh_from_db()
    assert second.is_active and not first.is_active and first.status == "done"
    scores = ProfileScore.objects.filter(kind="purchase_30d")
    assert scores.exists() and set(scores.values_list("run_id", flat=True)) == {second.pk}
    assert all(0 <= v <= 1 for v in scores.values_list("value", flat=True))
    likely = base_profiles().filter(
        compile_definition({"propensity": "purchase_30d", "op": "gte", "value": 0}, now=shop)
    )
    assert likely.count() == scores.count()


def test_propensity_trains_on_orders_that_name_no_products(
    shop, django_capture_on_commit_callbacks
):
    # `products` is optional in Segment's spec: without it the line features are missing for
    # everyone, a column the boosted model cannot bin; they are left out of the model.
    orders = list(Event.objects.filter(event="Order Completed"))
    for order in orders:
        del order.properties["products"]
    Event.objects.bulk_update(orders, ["properties"])
    run = _train("purchase_30d", django_capture_on_commit_callbacks)
    assert run.status == "done", run.message
    assert "recency" in run.features and "product_growth" not in run.features
    assert ProfileScore.objects.filter(kind="purchase_30d").exists()


def test_project_frames_read_order_lines_from_completed_orders_only(source):
    at = timezone.now()
    basket = [{"product_id": "p1", "price": 4.5, "quantity": 2}, {"sku": "S2", "price": 1.0}]
    order = {"revenue": 11.0, "products": basket}
    profile = make_profile(
        source,
        events=[
            (name, at, order) for name in ("Checkout Started", "Order Completed", "Product Viewed")
        ],
    )
    orders, activity, lines = project_frames()
    assert len(activity) == 3 and orders["amount"].tolist() == [11.0]
    assert lines[["customer", "product", "quantity", "price"]].values.tolist() == [
        [profile.pk, "p1", 2, 4.5],
        [profile.pk, "S2", 1, 1.0],
    ]
    assert lines["order"].nunique() == 1 and (lines["time"] == orders["time"].iloc[0]).all()


def test_churn_trains_too_and_scheduled_retraining_skips_unchanged_data(
    shop, django_capture_on_commit_callbacks
):
    run = _train("churn", django_capture_on_commit_callbacks)
    assert run.status == "done", run.message
    with django_capture_on_commit_callbacks(execute=True):
        queued = services.models_retrain_all()
    assert {r.kind for r in queued} == {"cluster", "purchase_30d"}  # churn's data did not change


def test_a_run_without_data_fails_with_a_message(db, django_capture_on_commit_callbacks):
    run = _train("purchase_30d", django_capture_on_commit_callbacks)
    assert run.status == "failed" and run.message == "no orders to learn from"
    assert not ModelRun.objects.filter(is_active=True).exists()


def test_models_page_shows_runs_and_trains_on_demand(
    staff_client, marketer, shop, django_capture_on_commit_callbacks
):
    client = staff_client(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/segments/models/train/", {"kind": "cluster"}, HTTP_HX_REQUEST="true"
        )
    assert response.status_code == 200
    page = client.get("/segments/models/").content.decode()
    run = ModelRun.objects.get(kind="cluster")
    metrics = run.metrics
    assert (
        f"k = {metrics['k']} · held-out silhouette {metrics['silhouette_held_out']:.3f} vs "
        f"recency alone {metrics['baseline_silhouette']:.3f} on {metrics['held_out_profiles']} "
        "held-out profiles"
    ) in page
    assert "active" in page
    assert client.post("/segments/models/train/", {"kind": "nope"}).status_code == 400


def test_centroids_in_words():
    assert (
        describe_centroid({"recency": -1.2, "monetary": 0.9, "frequency": 0.1})
        == "recently active, high spenders"
    )
    assert describe_centroid({"recency": 0.1}) == "average on every feature"
