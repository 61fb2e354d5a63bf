"""The decision's fast path: the consent gate asked inside the visitor's one query, the
lean audience evaluation against the segment language's reference evaluator, the query
counts of repeat and first decisions, and a first visit answered by page context alone."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from consent.models import Purpose
from consent.selectors import consent_allows
from consent.services import consent_record, suppression_create
from experiences import definition, selectors
from experiences.models import Decision
from experiences.services import decisions_take, placement_create
from profiles.models import Profile
from segments import conditions
from tests.experiences.conftest import visitor

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def by_id(anonymous_id, placements=("home_hero",), page=None):
    return decisions_take(
        placement_keys=list(placements),
        identifier=("anonymous_id", anonymous_id),
        page=page or {},
    )


# --- the consent gate inside the visitor's query ----------------------------------------------


def _gate(profile):
    found = selectors.visitor_get(profile_id=profile.pk, experience_ids=[], with_segments=False)
    return found.personalization_allowed, found.suppressed


@pytest.mark.parametrize("by_default", [True, False])
def test_the_gate_in_the_query_answers_as_consent_allows(placement, by_default):
    Purpose.objects.filter(code="personalization").update(granted_by_default=by_default)
    silent, _ = visitor()
    withdrew, _ = visitor()
    consent_record(profile=withdrew, purpose="personalization", granted=False, source="api")
    regranted, _ = visitor()
    consent_record(profile=regranted, purpose="personalization", granted=False, source="api")
    consent_record(profile=regranted, purpose="personalization", granted=True, source="api")
    granted_then_suppressed, _ = visitor()
    consent_record(
        profile=granted_then_suppressed, purpose="personalization", granted=True, source="api"
    )
    suppression_create(identifiers={}, profile_ids=[granted_then_suppressed.pk])
    other_purpose, _ = visitor()
    consent_record(profile=other_purpose, purpose="email_marketing", granted=False, source="api")
    for profile in (silent, withdrew, regranted, granted_then_suppressed, other_purpose):
        allowed, suppressed = _gate(profile)
        assert allowed == consent_allows(profile=profile, purpose="personalization")
        assert suppressed == (profile == granted_then_suppressed)
    assert _gate(silent)[0] is by_default and _gate(other_purpose)[0] is by_default
    assert _gate(withdrew)[0] is False and _gate(regranted)[0] is True


def test_a_purpose_missing_from_its_table_is_restored_by_the_gate(placement):
    profile, _ = visitor()
    Purpose.objects.filter(code="personalization").delete()
    assert _gate(profile) == (True, False)
    assert Purpose.objects.filter(code="personalization").exists()


# --- round trips ----------------------------------------------------------------------------


def test_a_repeat_decision_is_one_query_and_a_first_one_adds_one_insert(
    make_experience, django_assert_num_queries
):
    placement_create(
        fields={"key": "cart_banner", "name": "Cart", "default_content": {"title": "Cart"}},
        actor=None,
    )
    pros = make_experience(name="Pros", audience={"trait": "plan", "op": "eq", "value": "pro"})
    _, anonymous_id = visitor(traits={"plan": "pro"})
    by_id(anonymous_id)  # the active experiences' cache, off the count
    Decision.objects.all().delete()
    with django_assert_num_queries(2):  # the visitor; one INSERT (and commit) for the new arms
        first = by_id(anonymous_id, placements=("home_hero", "cart_banner"))
    with django_assert_num_queries(1):
        again = by_id(anonymous_id, placements=("home_hero", "cart_banner"))
    assert [a.as_dict() for a in again] == [a.as_dict() for a in first]
    assert first[0].experience == pros.pk and first[1].experience is None


def test_a_concurrent_first_decision_wins_and_is_read_back(make_experience):
    make_experience()
    profile, _ = visitor()
    stale = selectors.visitor_get(
        profile_id=profile.pk,
        experience_ids=list(Decision.objects.values_list("experience_id", flat=True)),
        with_segments=False,
    )
    # Another request of the same person records their arm first.
    winner = decisions_take(placement_keys=["home_hero"], profile=profile, page={})[0]
    from experiences.services import _arms_sticky

    experience = selectors.active_placements()["home_hero"].experiences[0]
    arms = _arms_sticky(visitor=stale, experiences=[experience], now=timezone.now())
    assert arms[experience.id].decision_id == winner.decision_id
    assert Decision.objects.count() == 1


# --- the audience without the reference evaluator's text -------------------------------------

_TRAIT_VALUES = st.one_of(
    st.sampled_from(["pro", "free", "Pro", "2026-05-30", "berlin"]),
    st.integers(-2, 5),
    st.booleans(),
    st.none(),
)
_TRAIT_LEAF = st.one_of(
    st.builds(
        lambda trait, op, value: {"trait": trait, "op": op, "value": value},
        st.sampled_from(["plan", "age", "city"]),
        st.sampled_from(["eq", "neq"]),
        st.one_of(st.sampled_from(["pro", "free", "Pro"]), st.integers(-2, 5)),
    ),
    st.builds(
        lambda trait, op, value: {"trait": trait, "op": op, "value": value},
        st.sampled_from(["plan", "city"]),
        st.sampled_from(["contains", "starts_with"]),
        st.sampled_from(["pr", "P", "ber"]),
    ),
    st.builds(
        lambda trait, op, value: {"trait": trait, "op": op, "value": value},
        st.sampled_from(["plan", "age"]),
        st.sampled_from(["in", "not_in"]),
        st.lists(st.one_of(st.sampled_from(["pro", "free"]), st.integers(0, 3)), max_size=3),
    ),
    st.builds(
        lambda trait, op, value: {"trait": trait, "op": op, "value": value},
        st.just("age"),
        st.sampled_from(["gt", "gte", "lt", "lte"]),
        st.integers(-1, 4),
    ),
    st.builds(
        lambda trait, op: {"trait": trait, "op": op},
        st.sampled_from(["plan", "age", "city"]),
        st.sampled_from(["exists", "not_exists"]),
    ),
    st.builds(
        lambda op, value: {"trait": "signup", "op": op, "value": value},
        st.sampled_from(["before", "after"]),
        st.sampled_from(["2026-05-01", "2026-06-01"]),
    ),
)
_COMPUTED_LEAF = st.one_of(
    st.builds(
        lambda name, op, value: {"computed": name, "op": op, "value": value},
        st.sampled_from(["order_count", "monetary", "frequency"]),
        st.sampled_from(["gt", "gte", "lt", "lte", "eq"]),
        st.integers(0, 3),
    ),
    st.builds(
        lambda days: {"computed": "recency", "op": "lte", "value": {"days": days}},
        st.integers(1, 60),
    ),
)
_SEGMENT_LEAF = st.builds(
    lambda segment, member: {"segment": segment, "member": member},
    st.integers(1, 3),
    st.booleans(),
)
_AUDIENCE = st.recursive(
    st.one_of(_TRAIT_LEAF, _COMPUTED_LEAF, _SEGMENT_LEAF),
    lambda children: st.builds(
        lambda kind, nodes: {kind: nodes},
        st.sampled_from(["all", "any", "none"]),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    audience=_AUDIENCE,
    traits=st.dictionaries(
        st.sampled_from(["plan", "age", "city", "signup"]), _TRAIT_VALUES, max_size=4
    ),
    orders=st.integers(0, 4),
    seen_days_ago=st.one_of(st.none(), st.integers(0, 90)),
    segment_ids=st.frozensets(st.integers(1, 3)),
)
def test_the_lean_audience_evaluation_agrees_with_the_reference_evaluator(
    audience, traits, orders, seen_days_ago, segment_ids
):
    try:
        conditions.validate(audience, segment_exists=lambda _id: True)
    except conditions.InvalidDefinition:
        assume(False)
    computed = {
        "order_count": orders,
        "revenue": orders * 12.5,
        "last_seen": None if seen_days_ago is None else NOW - dt.timedelta(days=seen_days_ago),
        "first_seen": None,
        "last_order_at": None,
    }
    reference = conditions.evaluate(
        audience,
        conditions.ProfileFacts(id=0, traits=traits, computed=computed),
        now=NOW,
        segments=lambda sid: {"all": []} if sid in segment_ids else {"any": []},
    )
    assert (
        definition.audience_matches(
            audience, traits=traits, computed=computed, segment_ids=segment_ids, now=NOW
        )
        is reference
    )


# --- a first visit: page context alone -----------------------------------------------------


def test_an_unseen_visitor_gets_the_first_page_only_experience_and_nothing_is_stored(
    make_experience,
):
    make_experience(
        name="Pros",
        priority=1,
        audience={"trait": "plan", "op": "not_exists"},  # would hold for an empty profile
    )
    campaign = make_experience(
        name="Spring campaign",
        priority=2,
        page=[{"field": "utm_campaign", "op": "eq", "value": "spring"}],
        variants=[{"name": "A", "content": {"title": "Spring {{ page.path }} {{ profile.id }}"}}],
    )
    profiles = Profile.objects.count()
    answer = by_id("brand-new", page={"utm_campaign": "spring", "path": "/p"})[0]
    assert answer.as_dict() == {
        "placement": "home_hero",
        "experience": campaign.pk,
        "variant": "A",
        "content": {"title": "Spring /p "},
        "decision_id": None,
    }
    assert by_id("brand-new", page={"utm_campaign": "autumn"})[0].experience is None
    assert Profile.objects.count() == profiles
    assert not Decision.objects.exists()
    # A known visitor is decided for as before: their audience first, a recorded arm.
    _, known = visitor()
    answer = by_id(known, page={"utm_campaign": "spring"})[0]
    assert answer.experience != campaign.pk and answer.decision_id


def test_an_unseen_visitors_arm_is_stable_for_their_identifier_and_honours_the_holdout(
    make_experience,
):
    make_experience(
        allocation="split",
        holdout_percent=30,
        variants=[
            {"name": "A", "weight": 1, "content": {"title": "A"}},
            {"name": "B", "weight": 1, "content": {"title": "B"}},
        ],
    )
    first = {f"new-{n}": by_id(f"new-{n}")[0] for n in range(60)}
    for anonymous_id, answer in first.items():
        assert by_id(anonymous_id)[0] == answer
        assert answer.decision_id is None
        assert answer.content == {"title": answer.variant or "Welcome"}
    arms = [answer.variant for answer in first.values()]
    assert {"A", "B", None} == set(arms)
    assert not Decision.objects.exists()


# --- the prepared statement ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_prepared_statement_lost_by_a_pooler_falls_back_to_plain_statements(
    make_experience, monkeypatch
):
    monkeypatch.setattr(selectors, "_prepare", True)
    make_experience()
    _, anonymous_id = visitor()
    first = by_id(anonymous_id)[0]
    # As a transaction pooler does: the next statement runs on a session that never saw it.
    with connection.cursor() as cursor:
        cursor.execute("DEALLOCATE ALL")
    assert by_id(anonymous_id)[0] == first
    assert selectors._prepare is False
    assert by_id(anonymous_id)[0] == first
