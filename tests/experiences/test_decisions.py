"""Decisions through the services: targeting, priority, schedule, stickiness, holdout,
consent and suppression, Liquid content, erasure."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from consent.services import consent_record, suppression_create
from experiences.definition import InvalidExperience
from experiences.models import Decision
from experiences.services import (
    UnknownPlacement,
    decisions_take,
    experience_update,
    placement_update,
)
from segments.services import segment_create, segment_refresh
from tests.experiences.conftest import visitor

pytestmark = pytest.mark.django_db


def decide(profile, page=None, placements=("home_hero",)):
    answers = decisions_take(placement_keys=list(placements), profile=profile, page=page or {})
    return answers[0] if len(placements) == 1 else answers


def test_a_visitor_nobody_targets_gets_the_default_content_and_no_decision(placement):
    profile, _ = visitor()
    answer = decide(profile)
    assert answer.as_dict() == {
        "placement": "home_hero",
        "experience": None,
        "variant": None,
        "content": {"title": "Welcome"},
        "decision_id": None,
    }
    assert not Decision.objects.exists()


def test_an_unknown_placement_is_refused(placement):
    with pytest.raises(UnknownPlacement, match="nope"):
        decide(None, placements=("nope",))


def test_trait_audience_targets_only_the_matching_visitor(make_experience):
    experience = make_experience(audience={"trait": "plan", "op": "eq", "value": "pro"})
    pro, _ = visitor(traits={"plan": "pro"})
    free, _ = visitor(traits={"plan": "free"})
    answer = decide(pro)
    assert (answer.experience, answer.variant, answer.content) == (
        experience.pk,
        "A",
        {"title": "Sale"},
    )
    assert decide(free).experience is None


def test_segment_audience_reads_the_precomputed_membership(make_experience, source):
    segment = segment_create(
        name="Big spenders", definition={"computed": "revenue", "op": "gt", "value": 100}
    )
    rich, _ = visitor(revenue=500)
    poor, _ = visitor(revenue=5)
    segment_refresh(segment=segment)
    make_experience(audience={"segment": segment.pk, "member": True})
    assert decide(rich).variant == "A"
    assert decide(poor).variant is None
    # Membership, not the definition, decides: a new big spender counts once segments say so.
    late, _ = visitor(revenue=900)
    assert decide(late).variant is None
    segment_refresh(segment=segment)
    assert decide(late).variant == "A"


def test_page_context_conditions_must_all_hold(make_experience):
    make_experience(
        page=[
            {"field": "path", "op": "starts_with", "value": "/shoes"},
            {"field": "utm_campaign", "op": "eq", "value": "spring"},
            {"field": "device", "op": "in", "value": ["mobile", "tablet"]},
        ]
    )
    profile, _ = visitor()
    hit = {"path": "/SHOES/red", "utm_campaign": "spring", "device": "mobile"}
    assert decide(profile, hit).variant == "A"
    assert decide(profile, {**hit, "utm_campaign": "autumn"}).variant is None
    assert decide(profile, {"path": "/shoes", "device": "mobile"}).variant is None
    assert decide(profile, {**hit, "path": "/hats"}).variant is None


def test_country_and_referrer_conditions(make_experience):
    make_experience(
        page=[
            {"field": "country", "op": "eq", "value": "DE"},
            {"field": "referrer", "op": "contains", "value": "google."},
        ]
    )
    profile, _ = visitor()
    assert decide(profile, {"country": "DE", "referrer": "https://www.google.de/"}).variant
    assert decide(profile, {"country": "FR", "referrer": "https://www.google.de/"}).variant is None


def test_the_first_matching_experience_by_priority_wins(make_experience):
    low = make_experience(name="Everyone", priority=50)
    high = make_experience(
        name="Pros", priority=10, audience={"trait": "plan", "op": "eq", "value": "pro"}
    )
    pro, _ = visitor(traits={"plan": "pro"})
    other, _ = visitor()
    assert decide(pro).experience == high.pk
    assert decide(other).experience == low.pk


def test_schedule_paused_and_draft_experiences_do_not_answer(make_experience):
    now = timezone.now()
    future = make_experience(name="Later", starts_at=now + dt.timedelta(days=1))
    past = make_experience(
        name="Over", starts_at=now - dt.timedelta(days=2), ends_at=now - dt.timedelta(days=1)
    )
    make_experience(name="Draft", status="draft")
    profile, _ = visitor()
    assert decide(profile).experience is None
    answer = decisions_take(
        placement_keys=["home_hero"], profile=profile, page={}, now=now + dt.timedelta(days=2)
    )[0]
    assert answer.experience == future.pk
    experience_update(experience=future, fields={"status": "paused"}, actor=None)
    experience_update(experience=past, fields={"ends_at": None}, actor=None)
    assert decide(profile).experience == past.pk


def test_assignment_is_sticky_and_the_decision_id_stable(make_experience):
    experience = make_experience(
        allocation="split",
        variants=[
            {"name": "A", "weight": 1, "content": {"title": "A"}},
            {"name": "B", "weight": 1, "content": {"title": "B"}},
        ],
    )
    people = [visitor()[0] for _ in range(40)]
    first = {p.pk: decide(p) for p in people}
    assert {a.variant for a in first.values()} == {"A", "B"}
    # New weights change who new people get, not who was assigned.
    experience_update(
        experience=experience,
        fields={
            "variants": [
                {"name": "A", "weight": 1, "content": {"title": "A"}},
                {"name": "B", "weight": 1000, "content": {"title": "B"}},
            ]
        },
        actor=None,
    )
    for profile in people:
        again = decide(profile)
        assert (again.variant, again.decision_id) == (
            first[profile.pk].variant,
            first[profile.pk].decision_id,
        )
        assert again.content == {"title": again.variant}
    assert Decision.objects.count() == 40


def test_holdout_people_get_the_default_content_and_a_recorded_decision(make_experience):
    make_experience(holdout_percent=50)
    people = [visitor()[0] for _ in range(60)]
    answers = [decide(p) for p in people]
    held = [a for a in answers if a.variant is None]
    assert 10 < len(held) < 50
    assert all(a.content == {"title": "Welcome"} and a.decision_id for a in held)
    assert Decision.objects.filter(in_holdout=True).count() == len(held)


def test_without_personalization_consent_default_content_and_no_decision(make_experience):
    make_experience()
    profile, _ = visitor()
    consent_record(profile=profile, purpose="personalization", granted=False, source="api")
    answer = decide(profile)
    assert (answer.experience, answer.content) == (None, {"title": "Welcome"})
    assert not Decision.objects.exists()


def test_a_suppressed_person_leaves_no_decision_rows(make_experience):
    make_experience()
    profile, _ = visitor()
    assert decide(profile).decision_id
    suppression_create(identifiers={}, profile_ids=[profile.pk])
    answer = decide(profile)
    assert answer.decision_id is None
    assert not Decision.objects.filter(profile=profile).exists()


def test_erasure_removes_the_decisions(make_experience):
    from consent.services import subject_erase

    make_experience()
    profile, anonymous_id = visitor()
    decide(profile)
    subject_erase(profile_ids=[profile.pk], identifiers=[anonymous_id])
    assert not Decision.objects.exists()


def test_liquid_values_from_the_profile_arrive_escaped_and_never_re_read(make_experience):
    make_experience(
        variants=[
            {
                "name": "A",
                "content": {
                    "title": "Hi {{ profile.traits.nickname | default: 'friend' }}",
                    "body": "<b>{{ profile.traits.bio }}</b>",
                },
            }
        ]
    )
    hostile, _ = visitor(traits={"nickname": "<script>x()</script>", "bio": "{{ 7*7 }}"})
    content = decide(hostile).content
    assert content["title"] == "Hi &lt;script&gt;x()&lt;/script&gt;"
    assert content["body"] == "<b>{{ 7*7 }}</b>"
    plain, _ = visitor()
    assert decide(plain).content["title"] == "Hi friend"


def test_personal_traits_reach_content_only_masked(make_experience):
    make_experience(variants=[{"name": "A", "content": {"title": "{{ profile.traits.email }}"}}])
    profile, _ = visitor(traits={"email": "jane.doe@example.com"})
    assert "jane.doe" not in decide(profile).content["title"]


def test_a_template_reaching_for_files_is_refused_on_write(make_experience):
    with pytest.raises(InvalidExperience) as refused:
        make_experience(variants=[{"name": "A", "content": {"title": "{% include 'x' %}"}}])
    assert "variants" in refused.value.errors


def test_invalid_experiences_name_the_field(make_experience):
    cases = {
        "audience": {"audience": {"event": "Order Completed"}},
        "page": {"page": [{"field": "os", "op": "eq", "value": "x"}]},
        "variants": {"variants": [{"name": "A", "content": {"headline": "no title"}}]},
        "allocation": {"allocation": "bandit"},
        "holdout_percent": {"holdout_percent": 100},
    }
    for field, fields in cases.items():
        with pytest.raises(InvalidExperience) as refused:
            make_experience(**fields)
        assert field in refused.value.errors, (field, refused.value.errors)


def test_a_schema_change_that_breaks_a_variant_is_refused(placement, make_experience):
    make_experience(variants=[{"name": "A", "content": {"title": "Sale", "body": "x"}}])
    with pytest.raises(InvalidExperience) as refused:
        placement_update(
            placement=placement,
            fields={
                "content_schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"title": {"type": "string"}},
                }
            },
            actor=None,
        )
    assert "content_schema" in refused.value.errors
