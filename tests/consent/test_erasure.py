"""Erasure leaves nothing behind. The check here is independent of the service's own SQL scan:
it reads every row of every model registered with Django, in Python, so tables added by later
parts are covered without editing this test."""

import pytest
from django.apps import apps
from django.core.cache import cache
from django.utils import timezone

from consent import services
from consent.erasure import _HOOKS, erasure_hook_register
from consent.models import ErasureTombstone, RequestStatus
from profiles.models import Event, Profile, QuarantinedMessage

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
    assert services.AuditLog.objects.filter(profile_id=person.profile.pk).exists()


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


def test_registered_erasure_hooks_run_with_the_profiles_and_identifiers(make_person, compliance):
    person = make_person(email="hooked@example.com", user_id="user-hooked-1")
    seen = {}

    def hook(*, profile_ids, identifiers):
        seen["profile_ids"], seen["identifiers"] = profile_ids, identifiers
        seen["profiles_still_there"] = Profile.objects.filter(pk__in=profile_ids).count()
        return 7

    erasure_hook_register("test-hook", hook)
    try:
        request = services.privacy_request_create(
            regulation_type="DELETE_ONLY", subject={"user_id": "user-hooked-1"}
        )
        services.privacy_request_verify(request=request, actor=compliance, note="ok")
        request = services.privacy_request_process(request=request)
    finally:
        _HOOKS.pop("test-hook", None)
    assert seen["profile_ids"] == [person.profile.pk]
    assert "hooked@example.com" in seen["identifiers"]
    assert seen["profiles_still_there"] == 1
    assert request.result["removed"]["hook:test-hook"] == 7


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
