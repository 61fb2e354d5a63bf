"""Training runs and the registry: promotion, refusal, skipping, rollback; erasure; merges;
who may train and change rules."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from consent.services import erasure_sweep_and_verify, subject_erase
from consent.services.scan import scan_cache
from identity.services import profile_merge
from recommendations.models import Interaction, ModelRun
from recommendations.recommenders.artifacts import bundle_load
from recommendations.selectors import training_data
from recommendations.services import RollbackRefused, model_rollback
from tests.recommendations.conftest import train

pytestmark = pytest.mark.django_db


def test_the_first_run_that_beats_popularity_serves_with_its_metrics_recorded(shop):
    run = train("ease")
    assert run.status == "done" and run.is_serving and run.decision == "promoted"
    assert run.metrics["validation"]["ndcg"] > run.metrics["popularity"]["ndcg"]
    assert run.metrics["people"] > 0 and run.data_hash and run.format_version == 1
    assert run.training_seconds is not None and run.params["fitted"]["l2"] == 250.0
    assert bundle_load(bytes(ModelRun.objects.get(pk=run.pk).artifact)).kind == "ease"


def test_a_run_on_unchanged_data_is_skipped(shop):
    first = train("ease")
    again = train("ease")
    assert again.status == "skipped" and f"run {first.pk}" in again.message
    assert ModelRun.objects.get(pk=first.pk).is_serving


def test_a_model_below_popularity_is_never_promoted(shop):
    train("ease")
    worse = train("trending")
    assert worse.decision == "challenger" and not worse.is_serving
    assert "popularity" in worse.decision_reason


def test_a_challenger_not_better_beyond_doubt_is_kept_with_its_interval(shop):
    champion = train("ease")
    same_kind = train("ease", l2=260.0)  # different parameters: trained, compared
    assert same_kind.status == "done" and same_kind.decision == "challenger"
    assert "95% CI" in same_kind.decision_reason
    assert same_kind.metrics["champion"]["run"] == champion.pk
    assert {"mean", "low", "high"} <= set(same_kind.metrics["bootstrap"])
    assert ModelRun.objects.get(is_serving=True).pk == champion.pk


def test_rollback_puts_an_earlier_run_back_and_refuses_a_run_without_a_model(
    shop, admin_api, django_capture_on_commit_callbacks
):
    first = train("ease")
    second = train("ease", l2=260.0)
    response = admin_api.post(f"/api/v1/recommenders/runs/{second.pk}/rollback/")
    assert response.status_code == 200 and response.json()["is_serving"] is True
    assert ModelRun.objects.get(is_serving=True).pk == second.pk
    model_rollback(run=first, actor=None)
    assert ModelRun.objects.get(is_serving=True).pk == first.pk
    skipped = train("ease")
    with pytest.raises(RollbackRefused):
        model_rollback(run=skipped, actor=None)
    refused = admin_api.post(f"/api/v1/recommenders/runs/{skipped.pk}/rollback/")
    assert refused.status_code == 409 and "no model" in refused.json()["run"][0]


def test_a_run_without_interactions_fails_saying_what_is_missing(db):
    run = train("hybrid")
    assert run.status == "failed" and "No interactions yet" in run.message


def test_training_runs_are_requested_through_the_api_and_run_on_a_worker(
    shop, admin_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post("/api/v1/recommenders/runs/", {"kind": "ease"}, format="json")
    assert response.status_code == 202
    run = admin_api.get(f"/api/v1/recommenders/runs/{response.json()['id']}/").json()
    assert run["status"] == "done" and run["is_serving"] is True
    listed = admin_api.get("/api/v1/recommenders/runs/").json()["results"]
    assert [r["id"] for r in listed] == [run["id"]]
    bad = admin_api.post(
        "/api/v1/recommenders/runs/", {"kind": "ease", "params": {"nope": 1}}, format="json"
    )
    assert bad.status_code == 400 and "params" in bad.json()
    magic = admin_api.post("/api/v1/recommenders/runs/", {"kind": "magic"}, format="json")
    assert magic.status_code == 400


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "als", "params": {"factors": "64"}}, "factors: '64' is not of type 'integer'"),
        ({"kind": "ease", "params": {"max_items": 0}}, "max_items: 0 is less than the minimum"),
        ({"kind": "hybrid", "params": {"weights": {"magic": 1}}}, "weights: Additional"),
    ],
)
def test_training_parameters_out_of_their_kinds_schema_are_a_400_saying_where(
    admin_api, body, message
):
    response = admin_api.post("/api/v1/recommenders/runs/", body, format="json")
    assert response.status_code == 400
    assert response.json()["params"][0].startswith(message)
    assert not ModelRun.objects.exists()


def test_erasure_leaves_no_interaction_cache_entry_or_factor_row_with_the_person(served, admin_api):
    user_id, profile = next((u, p) for u, p in served.people.items())
    admin_api.get(f"/api/v1/profiles/{profile.pk}/recommendations/")
    assert Interaction.objects.filter(event__profile=profile).exists()
    assert scan_cache([], profile_ids=[profile.pk])  # their cached list and version token

    subject_erase(profile_ids=[profile.pk], identifiers=[user_id])

    assert not Interaction.objects.filter(event__profile_id=profile.pk).exists()
    assert scan_cache([user_id], profile_ids=[profile.pk]) == []
    report = erasure_sweep_and_verify(identifiers=[user_id], profile_ids=[profile.pk], request=None)
    assert report["clean"], report
    # The serving model holds no row per person: nothing to rewrite.
    bundle = bundle_load(bytes(ModelRun.objects.get(is_serving=True).artifact))
    assert not hasattr(bundle.model, "user_factors")
    assert profile.pk not in set(training_data().user_keys.tolist())


def test_merged_profiles_count_as_one_person(shop):
    (first_id, first), (second_id, second) = list(shop.people.items())[:2]
    before = len(training_data().user_keys)
    profile_merge(survivor=first, duplicate=second, actor=None)
    data = training_data()
    assert len(data.user_keys) == before - 1
    assert second.pk not in set(data.user_keys.tolist())
    survivor_items = {
        data.item_keys[i] for i in data.items[data.users == list(data.user_keys).index(first.pk)]
    }
    assert survivor_items == shop.bought[first_id] | shop.bought[second_id]


@pytest.mark.parametrize(
    ("who", "read", "write"),
    [("marketer", 200, 202), ("admin_user", 200, 202), ("compliance", 200, 403)],
)
def test_marketers_and_admins_train_and_set_rules_compliance_only_reads(
    request, db, who, read, write
):
    api = APIClient()
    api.force_authenticate(request.getfixturevalue(who))
    assert api.get("/api/v1/recommenders/runs/").status_code == read
    assert api.post("/api/v1/recommenders/runs/", {}, format="json").status_code == write
    assert api.get("/api/v1/recommendation-rules/").status_code == read
    rules = api.put("/api/v1/recommendation-rules/", {"rules": {}}, format="json")
    assert rules.status_code == (200 if write == 202 else 403)


def test_rules_are_versioned_and_validated(admin_api):
    first = admin_api.put(
        "/api/v1/recommendation-rules/", {"rules": {"max_per_category": 2}}, format="json"
    )
    assert first.status_code == 200 and first.json()["version"] == 1
    second = admin_api.put(
        "/api/v1/recommendation-rules/", {"rules": {"bury": ["x"]}}, format="json"
    )
    assert second.json()["version"] == 2
    assert admin_api.get("/api/v1/recommendation-rules/").json()["rules"] == {"bury": ["x"]}
    bad = admin_api.put(
        "/api/v1/recommendation-rules/", {"rules": {"max_per_category": 0}}, format="json"
    )
    assert bad.status_code == 400 and "max_per_category" in bad.json()["rules"][0]
