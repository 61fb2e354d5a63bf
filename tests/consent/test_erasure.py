"""Erasure leaves nothing behind. The check here is independent of the service's own SQL scan:
it reads every row of every model registered with Django, in Python, so tables added by later
parts are covered without editing this test."""

import pytest
from django.apps import apps
from django.core.cache import cache
from django.utils import timezone

from access.models import AuditLog
from consent import services
from consent.models import ErasureTombstone, RequestStatus
from consent.services import ERASURE_HOOKS, erasure, erasure_hook_register
from identity.models import MatchCandidate, MatchKey, MergeRecord, NotSamePerson
from profiles.models import Event, Profile, QuarantinedMessage
from segments.models import (
    MembershipChange,
    ModelRun,
    ProfileScore,
    Segment,
    SegmentMembership,
    WebhookDelivery,
)

pytestmark = pytest.mark.django_db


def rows_mentioning(needles: list[str]) -> list[str]:
    found = []
    lowered = [n.lower() for n in needles]
    for model in apps.get_models(include_auto_created=True):
        if not model._meta.managed:
            continue
        fields = [f for f in model._meta.concrete_fields if not f.is_relation]
        for row in model._base_manager.values_list(*[f.attname for f in fields]):
            text = repr(row).lower()
            for needle in lowered:
                if needle in text:
                    found.append(f"{model._meta.label}: {needle}")
    return found


def cache_mentioning(needles: list[str], profile_id: int) -> list[str]:
    lowered = [n.lower().encode() for n in needles]
    client = cache._cache.get_client() if hasattr(cache._cache, "get_client") else None
    found = []
    if client is not None:
        for key in client.scan_iter(match=cache.make_key("*")):
            blob = key.lower() + (client.get(key) or b"").lower()
            if any(n in blob for n in lowered) or f"profile:{profile_id}".encode() in key:
                found.append(key.decode())
    else:
        for key, value in cache._cache.items():
            blob = key.lower().encode() + value.lower()
            if any(n in blob for n in lowered) or f"profile:{profile_id}" in key:
                found.append(key)
    return found


def test_erasure_leaves_no_row_or_cache_key_holding_the_subject(make_person, source, compliance):
    person = make_person(email="Erase.Me@example.com", user_id="user-erase-77", events=20)
    keeper = make_person(email="keep.me@example.com", user_id="user-keep-88", phone="+14155550188")
    services.consent_record(profile=person.profile, purpose="push", granted=True, source="api")
    # An event not yet resolved to a profile, and a quarantined message naming the subject.
    Event.objects.create(
        source=source,
        message_id="late-1",
        type="track",
        event="X",
        user_id="user-erase-77",
        timestamp=timezone.now(),
        received_at=timezone.now(),
        payload={},
    )
    QuarantinedMessage.objects.create(
        source=source,
        received_at=timezone.now(),
        reason="bad",
        errors=[],
        message={"traits": {"email": "erase.me@example.com"}},
    )
    cache.set(f"profile:{person.profile.pk}:recommendations", [1, 2, 3])
    cache.set("lookup:erase.me@example.com", person.profile.pk)
    cache.set("segment-preview", {"emails": ["erase.me@example.com", "keep.me@example.com"]})
    cache.set(f"profile:{keeper.profile.pk}:recommendations", [4])

    request = services.privacy_request_create(
        regulation_type="SUPPRESS_WITH_DELETE", subject={"email": "ERASE.ME@example.com"}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="passport")
    request = services.privacy_request_process(request=request)

    assert request.status == RequestStatus.FINISHED, request.verification
    assert request.verification["clean"] is True
    needles = ["erase.me@example.com", "user-erase-77", "anon-user-erase-77", "+14155550123"]
    assert rows_mentioning(needles) == []
    assert cache_mentioning(needles, person.profile.pk) == []
    # Only hashed proof is left, and the other person is untouched.
    assert ErasureTombstone.objects.filter(request=request).count() == 1
    assert request.subject == {}
    assert Profile.objects.filter(pk=keeper.profile.pk).exists()
    assert keeper.profile.events.count() == 3
    assert cache.get(f"profile:{keeper.profile.pk}:recommendations") == [4]
    # Audit rows name the profile by id.
    assert AuditLog.objects.filter(profile_id=person.profile.pk).exists()


def test_the_verification_reports_what_a_hook_left_behind(make_person, compliance):
    person = make_person(email="leaky@example.com", user_id="user-leaky-1")
    # A table the erasure does not know about and no hook cleans: the scan must find it.
    from django.contrib.auth.models import User

    User.objects.create(username="copy-of-leaky", email="leaky@example.com")
    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"email": person.email}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    request = services.privacy_request_process(request=request)
    assert request.status == RequestStatus.PARTIAL_SUCCESS
    hit = request.verification["hits"][0]
    assert hit["model"] == "auth.User" and hit["column"] == "email" and hit["count"] == 1


def test_registered_erasure_hooks_run_with_the_profiles_and_identifiers(
    make_person, compliance, monkeypatch
):
    person = make_person(email="hooked@example.com", user_id="user-hooked-1")
    seen = {}

    def hook(*, profile_ids, identifiers):
        seen["profile_ids"], seen["identifiers"] = profile_ids, identifiers
        seen["profiles_still_there"] = Profile.objects.filter(pk__in=profile_ids).count()
        return {"tests.Thing": 7}

    monkeypatch.setattr(erasure, "ERASURE_HOOKS", dict(ERASURE_HOOKS))
    erasure_hook_register(name="test-hook", hook=hook)
    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"user_id": "user-hooked-1"}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    request = services.privacy_request_process(request=request)
    assert seen["profile_ids"] == [person.profile.pk]
    assert "hooked@example.com" in seen["identifiers"]
    assert seen["profiles_still_there"] == 1
    assert request.result["removed"]["tests.Thing"] == 7


def test_every_app_above_consent_that_points_at_profiles_has_an_erasure_hook():
    """Each app deletes its own rows: one whose tables point at profiles must say how."""
    holders = {
        model._meta.app_label
        for model in apps.get_models(include_auto_created=True)
        for field in model._meta.local_fields
        if field.is_relation and field.related_model is Profile
    }
    assert holders - {"profiles", "consent"} <= set(ERASURE_HOOKS)
    assert {"identity", "segments"} <= set(ERASURE_HOOKS)


def test_each_app_removes_its_own_rows_of_the_subject_and_keeps_everyone_elses(
    make_person, compliance
):
    person = make_person(email="rows@example.com", user_id="user-rows-1")
    keeper = make_person(email="other@example.com", user_id="user-other-1", phone="+14155550177")
    earlier = Profile.objects.create(merged_into=person.profile)
    now = timezone.now()
    subject, other = person.profile, keeper.profile
    MatchKey.objects.bulk_create(
        [MatchKey(profile=subject, rule=1, key=11), MatchKey(profile=other, rule=1, key=12)]
    )
    low, high = sorted([subject, other], key=lambda p: p.pk)
    candidate = MatchCandidate.objects.create(
        profile_a=low,
        profile_b=high,
        probability=0.7,
        weight=3.0,
        explanation={"email": ["rows@example.com", "other@example.com"]},
    )
    NotSamePerson.objects.create(profile_a=low, profile_b=high)
    MergeRecord.objects.create(
        survivor=subject,
        duplicate=earlier,
        candidate=candidate,
        survivor_before={"traits": {"email": "rows@example.com"}},
    )
    segment = Segment.objects.create(
        name="Pros", definition={"trait": "plan", "op": "eq", "value": "pro"}
    )
    run = ModelRun.objects.create(kind=ModelRun.Kind.CHURN, status=ModelRun.Status.DONE)
    for profile in (subject, other):
        SegmentMembership.objects.create(segment=segment, profile=profile, entered_at=now)
        MembershipChange.objects.create(
            segment=segment, profile=profile, kind="enter", cause="refresh", at=now
        )
        ProfileScore.objects.create(profile=profile, kind=ModelRun.Kind.CHURN, value=0.5, run=run)
    shared, alone = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                segment=segment,
                url="https://hooks.example.com/in",
                payload={"entered": [subject.pk, other.pk], "exited": []},
            ),
            WebhookDelivery(
                segment=segment,
                url="https://hooks.example.com/in",
                payload={"entered": [], "exited": [subject.pk]},
            ),
        ]
    )

    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"email": "rows@example.com"}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    request = services.privacy_request_process(request=request)

    assert request.status == RequestStatus.FINISHED, request.verification
    erased = [subject.pk, earlier.pk]
    for model in apps.get_models(include_auto_created=True):
        for field in model._meta.local_fields:
            if field.is_relation and field.related_model is Profile:
                rows = model._base_manager.filter(**{f"{field.name}__in": erased})
                assert not rows.exists(), model._meta.label
    assert request.result["removed"]["identity.MergeRecord"] == 1
    assert request.result["removed"]["segments.SegmentMembership"] == 1
    assert request.result["removed"]["segments.WebhookDelivery"] == 2
    shared.refresh_from_db()
    assert shared.payload["entered"] == [other.pk]
    assert not WebhookDelivery.objects.filter(pk=alone.pk).exists()
    assert MatchKey.objects.filter(profile=other).exists()
    assert SegmentMembership.objects.filter(profile=other).exists()
    assert MembershipChange.objects.filter(profile=other).exists()
    assert ProfileScore.objects.filter(profile=other).exists()


def test_erasure_follows_merged_profiles(make_person, compliance):
    survivor = make_person(email="merged@example.com", user_id="user-merged-1")
    duplicate = Profile.objects.create(
        traits={"email": "merged@example.com"}, merged_into=survivor.profile
    )
    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"email": "merged@example.com"}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    request = services.privacy_request_process(request=request)
    assert request.result["profiles"] == 2
    assert not Profile.objects.filter(pk__in=[survivor.profile.pk, duplicate.pk]).exists()
    assert request.status == RequestStatus.FINISHED


def test_an_erasure_of_an_unknown_subject_finishes_with_nothing_found(compliance):
    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"email": "ghost@example.com"}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    request = services.privacy_request_process(request=request)
    assert request.status == RequestStatus.FINISHED
    assert request.result["profiles"] == 0 and request.verification["clean"]


def test_erasure_keeps_the_audit_chain_and_records_that_it_opened_consent_history(
    make_person, compliance
):
    """Decided: erasure never touches audit rows (they name profiles by id, with no
    identifier), so the chain needs no re-linking; it deletes consent records through the one
    audited door."""
    from access.selectors import audit_chain_verify

    person = make_person(email="gone@example.com", user_id="user-gone-1")
    services.consent_record(profile=person.profile, purpose="push", granted=True, source="api")
    audit_rows = AuditLog.objects.filter(profile_id=person.profile.pk).count()
    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"email": "gone@example.com"}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="id card")
    request = services.privacy_request_process(request=request)

    assert request.status == RequestStatus.FINISHED, request.verification
    assert not person.profile.consent_records.exists()
    assert AuditLog.objects.filter(profile_id=person.profile.pk).count() >= audit_rows
    door = AuditLog.objects.get(action="history.rewrite")
    assert (door.resource_id, door.details["request"]) == ("erasure", request.pk)
    assert audit_chain_verify().intact


def test_the_verification_searches_trained_artifacts_and_stored_files(
    make_person, compliance, settings, tmp_path
):
    """A model artifact or a file that kept the subject is reported, however it is stored: a
    joblib pickle, zlib-compressed, a numpy string array (UTF-32), a file of any case."""
    import io
    import zlib

    import joblib
    import numpy as np

    from recommendations.models import ModelRun as RecommenderRun
    from segments.ml.artifacts import dump_artifact

    settings.MEDIA_ROOT = tmp_path
    person = make_person(email="Kept.In.Models@example.com", user_id="user-kept-1")
    leaky_segments = ModelRun.objects.create(
        kind=ModelRun.Kind.CHURN,
        status=ModelRun.Status.DONE,
        artifact=dump_artifact({"model": "x", "rows": ["kept.in.models@example.com"]}),
    )
    ModelRun.objects.create(
        kind=ModelRun.Kind.CHURN, status=ModelRun.Status.DONE, artifact=dump_artifact({"x": 1})
    )
    buffer = io.BytesIO()
    joblib.dump({"users": np.array(["KEPT.IN.MODELS@EXAMPLE.COM", "someone@else.org"])}, buffer)
    leaky_recommender = RecommenderRun.objects.create(
        kind="als", artifact=zlib.compress(buffer.getvalue(), 3)
    )
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.csv").write_text("email\nkept.in.models@EXAMPLE.com\n")
    (tmp_path / "stray" / "others.csv").write_text("email\nsomeone@else.org\n")

    request = services.privacy_request_create(
        regulation_type="DELETE_ONLY", subject={"email": person.email}
    )
    services.privacy_request_verify(request=request, actor=compliance, note="ok")
    request = services.privacy_request_process(request=request)

    assert request.status == RequestStatus.PARTIAL_SUCCESS
    found = {
        (hit["model"], hit["column"]): hit["sample_ids"] for hit in request.verification["hits"]
    }
    assert found == {
        ("segments.ModelRun", "artifact"): [str(leaky_segments.pk)],
        ("recommendations.ModelRun", "artifact"): [str(leaky_recommender.pk)],
    }
    assert request.verification["files"] == ["stray/notes.csv"]


def test_erasure_retrains_the_models_fitted_on_the_subject_once_per_burst(
    make_person, compliance, settings, django_capture_on_commit_callbacks
):
    """Scored people (segments' models) and people with interactions (the recommender) were in
    the training data: their erasure retrains each app's models once, shared by the erasures
    of the next ERASURE_RETRAIN_DELAY_SECONDS (tasks run inline here)."""
    from recommendations.models import Interaction, Item
    from recommendations.models import ModelRun as RecommenderRun

    settings.ERASURE_RETRAIN_DELAY_SECONDS = 600
    item = Item.objects.create(external_id="sku-1", title="Mug")
    run = ModelRun.objects.create(kind=ModelRun.Kind.CHURN, status=ModelRun.Status.DONE)

    def erase(person) -> None:
        request = services.privacy_request_create(
            regulation_type="DELETE_ONLY", subject={"email": person.email}
        )
        services.privacy_request_verify(request=request, actor=compliance, note="ok")
        with django_capture_on_commit_callbacks(execute=True):
            request = services.privacy_request_process(request=request)
        assert request.status == RequestStatus.FINISHED, request.verification

    for n in range(2):
        person = make_person(email=f"trained.on.{n}@example.com", user_id=f"user-trained-{n}")
        ProfileScore.objects.create(
            profile=person.profile, kind=ModelRun.Kind.CHURN, value=0.5, run=run
        )
        event = person.profile.events.first()
        Interaction.objects.create(
            event=event, item=item, kind="purchase", occurred_at=event.timestamp
        )
        erase(person)
    segment_runs = ModelRun.objects.exclude(pk=run.pk)
    # One retraining for the two erasures: each segments model kind once, the recommender once.
    kinds = list(segment_runs.values_list("kind", flat=True))
    assert sorted(kinds) == sorted(set(kinds)) and kinds
    assert RecommenderRun.objects.count() == 1

    # Someone the models never saw retrains nothing, even once the interval is over.
    cache.clear()
    erase(make_person(email="never.trained@example.com", user_id="user-never-1"))
    assert segment_runs.count() == len(kinds)
    assert RecommenderRun.objects.count() == 1
