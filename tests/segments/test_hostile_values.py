"""Values a fuzzer sent in definitions and events: bounds outside what a column or a date can
hold, oversized or non-finite numbers, NUL and lone surrogates, traits that are not objects.
Each is refused with a 400 pointing at the node, or tolerated, and none stalls the pipeline."""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
from rest_framework.test import APIClient

from cdp import pipeline
from segments import conditions, services
from segments.models import Segment, SegmentMembership, WebhookDelivery
from segments.selectors import definition_profiles, profile_facts
from tests.identity.factories import event_make
from tests.segments.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(marketer):
    client = APIClient()
    client.force_authenticate(marketer)
    return client


def refusals(api, definition) -> list[list[dict]]:
    """The definition errors of a create and of a preview, each a 400 that stored nothing."""
    found = []
    for url, body in (
        ("/api/v1/segments/", {"name": "bad", "definition": definition}),
        ("/api/v1/segments/preview/", {"definition": definition}),
    ):
        response = api.post(url, body, format="json")
        assert response.status_code == 400, response.content
        found.append(response.json()["definition"])
    assert not Segment.objects.exists()
    return found


def assert_refused(api, definition, pointer: str, words: str) -> None:
    for errors in refusals(api, definition):
        assert [e["pointer"] for e in errors] == [pointer], errors
        assert words in errors[0]["message"], errors


def stored_as_before(definition) -> Segment:
    """A segment saved before validation refused such definitions (no validation here)."""
    return Segment.objects.create(
        name="old",
        definition=definition,
        dependencies=conditions.dependencies(definition, lambda _id: None).as_dict(),
    )


# --- A: bounds outside the column -------------------------------------------------------------


@pytest.mark.parametrize(
    "node",
    [
        {"computed": "event_count", "op": "lt", "value": -1},
        {"computed": "event_count", "op": "gt", "value": 1e30},
        {"computed": "order_count", "op": "between", "value": [-5, 3]},
        {"computed": "revenue", "op": "gte", "value": 10**13},
    ],
)
def test_a_bound_outside_what_the_column_holds_is_refused_at_the_node(api, node):
    assert_refused(api, {"all": [{"trait": "a", "op": "exists"}, node]}, "/all/1", "between")


@pytest.mark.parametrize(
    ("node", "everyone"),
    [
        ({"computed": "event_count", "op": "lt", "value": -1}, False),
        ({"computed": "event_count", "op": "gt", "value": 1e30}, False),
        ({"computed": "event_count", "op": "gt", "value": -1}, True),
        ({"none": [{"computed": "order_count", "op": "eq", "value": -3}]}, True),
    ],
)
def test_a_bound_outside_the_column_still_compiles_like_the_reference_evaluator(
    profile_maker, node, everyone
):
    people = [profile_maker(event_count=n) for n in (0, 3)]
    selected = set(definition_profiles(node, now=NOW).values_list("pk", flat=True))
    assert selected == ({p.pk for p in people} if everyone else set())
    for person in people:
        assert conditions.evaluate(node, profile_facts(profile=person), now=NOW) is everyone


def test_a_stored_segment_that_matches_nobody_by_its_bound_never_stalls_the_pipeline(
    source, django_capture_on_commit_callbacks
):
    nobody = stored_as_before({"computed": "event_count", "op": "lt", "value": -1})
    nobody_either = stored_as_before({"computed": "event_count", "op": "gt", "value": 1e30})
    # Not cacheable (a date-string window): compiled for each chunk, not once.
    nobody_uncached = stored_as_before(
        {
            "all": [
                {"trait": "signup", "op": "within_last", "value": {"days": 7}},
                {"computed": "order_count", "op": "lt", "value": -1},
            ]
        }
    )
    everyone = services.segment_create(
        name="all", definition={"computed": "event_count", "op": "gte", "value": 0}
    )
    with django_capture_on_commit_callbacks(execute=True):
        event = event_make(source, event="Product Viewed", user_id="u1")
        pipeline.events_process(event_ids=[event.pk])
    event.refresh_from_db()
    assert event.processed_at is not None and event.profile_id is not None
    assert set(SegmentMembership.objects.values_list("segment_id", "profile_id")) == {
        (everyone.pk, event.profile_id)
    }
    for segment in (nobody, nobody_either, nobody_uncached):
        assert services.segment_refresh(segment=segment, now=NOW).size == 0


# --- B: day counts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "pointer"),
    [
        ({"computed": "recency", "op": "gt", "value": 1000000}, ""),
        ({"computed": "recency", "op": "gt", "value": 1e300}, ""),
        ({"computed": "recency", "op": "lt", "value": -1e7}, ""),
        ({"computed": "recency", "op": "between", "value": [1, 40000]}, ""),
    ],
)
def test_a_recency_beyond_a_century_is_refused_at_the_node(api, node, pointer):
    assert_refused(api, node, pointer, "days")


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        ({"trait": "signup", "op": "within_last", "value": {"days": 36501}}, "/value"),
        ({"event": "X", "within": {"hours": 876001}}, "/within"),
        ({"event": "X", "last": {"op": "within_last", "value": {"days": 10**9}}}, "/last/value"),
        (
            {"event": "X", "not_followed_by": {"event": "Y", "within": {"days": 10**7}}},
            "/not_followed_by/within",
        ),
        ({"computed": "last_seen", "op": "within_last", "value": {"days": 10**6}}, "/value"),
    ],
)
def test_a_duration_beyond_a_century_is_refused_at_the_node(api, definition, pointer):
    # The schema bounds every duration (these never reached the compiler); kept as a guard.
    for errors in refusals(api, definition):
        assert [e["pointer"] for e in errors if e["pointer"].startswith(pointer)], errors


def test_the_longest_recency_and_durations_compile_and_evaluate(api, profile_maker):
    person = profile_maker(last_seen=NOW - dt.timedelta(days=400))
    definition = {
        "all": [
            {"computed": "recency", "op": "between", "value": [0, 36500]},
            {"computed": "last_seen", "op": "within_last", "value": {"days": 36500}},
            {"none": [{"event": "X", "within": {"hours": 876000}}]},
        ]
    }
    assert list(definition_profiles(definition, now=NOW)) == [person]
    assert conditions.evaluate(definition, profile_facts(profile=person), now=NOW)
    response = api.post("/api/v1/segments/", {"name": "old", "definition": definition}, "json")
    assert response.status_code == 201, response.content


# --- E: traits that are not an object ---------------------------------------------------------


@pytest.mark.parametrize("context_traits", ["x", ["plan"], 3, None])
def test_an_event_whose_context_traits_is_not_an_object_is_processed(
    source, context_traits, django_capture_on_commit_callbacks
):
    pro = services.segment_create(
        name="pro", definition={"trait": "plan", "op": "eq", "value": "pro"}
    )
    services.segment_create(name="seen", definition={"computed": "last_seen", "op": "exists"})
    with django_capture_on_commit_callbacks(execute=True):
        event = event_make(
            source,
            "identify",
            user_id="u1",
            traits={"plan": "pro"},
            context={"traits": context_traits},
        )
        pipeline.events_process(event_ids=[event.pk])
    event.refresh_from_db()
    assert event.processed_at is not None
    assert SegmentMembership.objects.filter(segment=pro, profile_id=event.profile_id).exists()


# --- C, D: numbers and text no database or JSON reader holds alike ----------------------------


@pytest.mark.parametrize(
    ("definition", "pointer"),
    [
        ({"trait": "a", "op": "gt", "value": 10**30}, "/value"),
        ({"trait": "a", "op": "eq", "value": -(2**53) - 1}, "/value"),
        ({"all": [{"trait": "a", "op": "in", "value": [1, 2**64]}]}, "/all/0/value/1"),
        (
            {"event": "X", "where": [{"property": "p", "op": "lt", "value": 2**63}]},
            "/where/0/value",
        ),
        ({"segment": 10**20}, "/segment"),
    ],
)
def test_an_integer_beyond_2_to_the_53_is_refused_where_it_is(api, definition, pointer):
    assert_refused(api, definition, pointer, "2**53")


def test_the_largest_safe_integer_is_accepted(api):
    definition = {"trait": "a", "op": "lt", "value": 2**53}
    response = api.post("/api/v1/segments/", {"name": "ok", "definition": definition}, "json")
    assert response.status_code == 201, response.content


# Read as the builder form reads its JSON text (escapes and NaN allowed); a strict JSON API
# parser may refuse them before validation, the service must refuse them whatever the path.
@pytest.mark.parametrize(
    ("text", "pointer", "words"),
    [
        ('{"trait": "a", "op": "eq", "value": "x\\u0000"}', "/value", "NUL"),
        ('{"trait": "a", "op": "in", "value": ["ok", "\\ud800"]}', "/value/1", "surrogate"),
        ('{"event": "X\\udfff"}', "/event", "surrogate"),
        (
            '{"event": "X", "where": [{"property": "p", "op": "eq", "value": "\\u0000"}]}',
            "/where/0/value",
            "NUL",
        ),
        ('{"trait": "a", "op": "eq", "value": 1, "\\u0000": 1}', "", "field name"),
        ('{"all": [{"trait": "a", "op": "exists", "\\ud800": 1}]}', "/all/0", "field name"),
        ('{"trait": "a", "op": "gt", "value": NaN}', "/value", "finite"),
        ('{"computed": "revenue", "op": "lt", "value": Infinity}', "/value", "finite"),
        ('{"trait": "a", "op": "gt", "value": 1e999}', "/value", "finite"),
    ],
)
def test_nul_lone_surrogates_and_non_finite_numbers_are_refused_where_they_are(
    text, pointer, words
):
    with pytest.raises(conditions.InvalidDefinition) as refused:
        services.segment_definition_check(definition=json.loads(text))
    assert [e.pointer for e in refused.value.errors] == [pointer]
    assert words in refused.value.errors[0].message
    # Renderable: the message never quotes the text back.
    assert refused.value.errors[0].message.encode()


@pytest.mark.parametrize(
    "node",
    [
        {"trait": "signup", "op": "after", "value": "7999-12-31"},
        {"trait": "signup", "op": "between", "value": ["2020-01-01", "7999-06-30"]},
    ],
)
def test_a_date_in_the_years_reserved_for_the_real_time_placeholder_is_refused(api, node):
    # `after D` compiles to the day after D: a date in 7999 could reach the year 8000, where the
    # real-time cache keeps its placeholder for "now".
    assert_refused(api, {"all": [node]}, "/all/0", "needs")


# --- F: an unreachable webhook in dev mode (tasks inline) -------------------------------------


def test_an_unreachable_webhook_never_fails_the_request_that_triggered_it(
    api, profile_maker, django_capture_on_commit_callbacks
):
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/hook"
    person = profile_maker(traits={"country": "DE"})
    definition = {"trait": "country", "op": "eq", "value": "DE"}
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/segments/",
            {"name": "de", "definition": definition, "webhook_url": url},
            format="json",
        )
    assert response.status_code == 201, response.content
    segment = Segment.objects.get()
    assert SegmentMembership.objects.filter(segment=segment, profile=person).exists()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state != "sent" and delivery.last_error.startswith("connection failed")

    person.traits = {"country": "FR"}
    person.save()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/segments/{segment.pk}/refresh/")
    assert response.status_code == 200, response.content
    assert WebhookDelivery.objects.count() == 2
