"""schemathesis against the whole OpenAPI schema (/api/schema/): for every operation, a bounded
number of generated requests (the same ones on every run), sent through the real WSGI
application as an admin's API key (the management API) or a source's write key (ingestion).

Every check runs: no server error, every answer as documented (status code, content type,
headers, body schema), no unsupported method served, and both directions of the request schemas:
a request the schema allows is accepted (`positive_data_acceptance`) and one it forbids is
refused (`negative_data_rejection`). Some answers are allowed on purpose, each narrowly
(`_as_designed`), being rules no schema can spell: ingestion reads more time formats than the
schema promises (SDKs send RFC 2822 and partial dates), refuses a clock-skew correction that
lands outside the years it keeps (a `sentAt` far from `timestamp`) and an id sent as a number
whose digits pass 255; a request that names an object by an id that does not exist (a body's
`profiles: [1, 2]`) or a page cursor the server never issued is a 400 saying which; a few
rules between fields (CROSS_FIELD_RULES, /v1/decide's one visitor and one placement form among
them); what lives in data or outside any schema (a consent purpose, placement, channel or
segment named must exist, a URL's host must resolve to a public address, a phone number must
be one by its country's plan, key names: propertyNames); and the segment, experience and
campaign languages' rules beyond their JSON Schemas (operator and value, dates, ordered ranges,
content per placement). No request carries NUL, which the parser refuses everywhere."""

import base64
import json
import re

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.core.failures import AcceptedNegativeData, Failure, FailureGroup
from schemathesis.openapi.checks import RejectedPositiveData, UseAfterFree

from access.auth import SCOPES
from access.services import api_key_create, source_create
from cdp.wsgi import application
from experiences.services import experience_create, placement_create
from profiles import ingest_middleware
from profiles.models import Profile
from segments.services.definitions import segment_create

pytestmark = pytest.mark.django_db

WRITE_KEY = "WRITE_KEY_fuzz"
EXAMPLES_PER_OPERATION = 5
CASES: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _counts():
    yield
    print(f"\nfuzz: {len(CASES)} operations, {sum(CASES.values())} cases")


@pytest.fixture(autouse=True)
def _connection_kept(monkeypatch):
    # As Django's test client does: the request signals must not close the connection that
    # holds the test's transaction (nor must the ingestion front, which does their work).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    monkeypatch.setattr(ingest_middleware, "close_old_connections", lambda: None)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(db) -> dict[str, str]:
    source_create(name="Fuzz", write_key=WRITE_KEY)
    # Something to find for the generated ids and lookups.
    Profile.objects.create(traits={"email": "fuzz@example.com", "plan": "pro"})
    segment_create(name="Pro", definition={"all": [{"trait": "plan", "op": "eq", "value": "pro"}]})
    # The placement the schema's examples name, with an experience for everyone: /v1/decide
    # answers its content (the other generated keys are unknown: 404).
    placement = placement_create(
        fields={"key": "home_hero", "name": "Home hero", "default_content": {"title": "Hi"}},
        actor=None,
    )
    experience_create(
        fields={
            "placement": placement,
            "name": "Everyone",
            "status": "active",
            "allocation": "single",
            "variants": [{"name": "A", "content": {"title": "Hello"}}],
        },
        actor=None,
    )
    key = api_key_create(name="fuzz admin", scopes=list(SCOPES)).key
    return {
        "api": f"Bearer {key}",
        "ingest": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
    }


# Loaded when the module is collected: serving the schema reads no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# No string the API takes may hold NUL (PostgreSQL cannot store it; access/parsers.py answers
# 400 wherever it is, unknown fields included).
schema.config.generation.update(allow_x00=False)


# The time fields ingestion parses (cdp/schema.py PARSED_TIME).
LENIENT_TIME = re.compile(r"in body - (timestamp|originalTimestamp|sentAt):")
# A clock-skew correction (receivedAt - (sentAt - timestamp)) that lands outside the years kept.
# An id sent as a number is stored as its decimal string, which must fit 255 characters like a
# string id (a float 1e300 is 301 digits).
# An id sent as a number too large to keep its digits (above 64 bits) is refused too.
LONG_NUMBER_ID = re.compile(
    r"messages\[\d+\]\.\w+Id: (longer than 255 characters|a number this large loses digits: "
    r"send the id as a string)"
)
SKEW_OUT_OF_RANGE = re.compile(
    r"messages\[\d+\]\.sentAt: skew correction gives a time out of range"
)
# An id that names nothing, or a page cursor the server never issued (only `next` links hold
# valid ones).
UNKNOWN_ID = re.compile(r"no [a-z ]+ with ids? \d+(, \d+)*|Invalid cursor\.")
# Rules between fields or items, which OpenAPI 3.0 cannot spell (the operations describe them).
CROSS_FIELD_RULES = re.compile(
    r"must not be above the merge threshold"  # identity settings: review <= merge
    r"|a field path appears twice"  # identity settings: fields[].path unique
    r"|anonymousId: give exactly one of anonymousId or userId"  # /v1/decide
    r"|placement: give placement \(one key\) or placements \(a list\)"  # GET /v1/decide
    r"|Give exactly one of user_id or anonymous_id\."  # GET /api/v1/recommendations/
    r"|Only the trending slot takes a segment\."  # recommendations: segment with slot
    r"|The similar slot needs the page's item\."  # recommendations: page_item with slot
    r"|give the person's profile id or userId"  # push subscriptions: one of the two
)
# Which numbers are phone numbers (the numbering plans of every country, as phonenumbers
# knows them): no pattern says it.
NOT_A_PHONE_NUMBER = re.compile(r"phone is not a phone number")

# The consent purposes are rows compliance staff add (the schema, served without reading the
# database, cannot list them): an unknown one is refused, naming those there are.
UNKNOWN_PURPOSE = re.compile(r"unknown purpose '.*'; known: [a-z0-9_, ]*")
# Where a URL's host name leads (DNS, at the time of the request): the platform calls no
# private or reserved address (access.outbound).
PRIVATE_ADDRESS = re.compile(r"\S+ resolves to [0-9a-f.:]+, a private or reserved address")
# The segment condition language's rules beyond its JSON Schema (segments.conditions.validate,
# documented in segments/conditions/__init__.py): an operator and its value go together, dates
# parse, ranges are ordered, numbers fit every reader, groups nest and count within bounds;
# segments and consent purposes that are named must exist (rows, not schema).
CONDITION_RULES = re.compile(
    r"'[a-z_]+' needs (a number|a string, number or boolean|a non-empty string|a non-empty list"
    r"|a list of strings, numbers or booleans|a date YYYY-MM-DD before 7999)"
    r"|operator '[a-z_]+' needs a value|exists/not_exists take no value|unknown operator '.*'"
    r"|between needs \[(low, high)\] with low <= high|between needs \[from, to\] with from <= to"
    r"|between needs \[low, high\] \(two numbers( or two dates YYYY-MM-DD before 7999)?\)"
    r"|between on (an event property needs two numbers"
    r"|(an occurrence|a date) needs two dates YYYY-MM-DD before 7999)"
    r"|between needs two valid dates, from <= to"
    r'|within_last needs \{"days": N\} or \{"hours": N\}'
    r'|within_last on a trait counts days: \{"days": N\}'
    r"|date operators are not available on event properties"
    r"|use either first or last, not both"
    r"|first/last cannot be combined with count, within or not_followed_by"
    r"|not_followed_by cannot be combined with count"
    r"|[a-z_0-9]+ takes one of: [a-z_, ]+"
    r"|[a-z_0-9]+ is between \S+ and \S+( \w+)?: use a value in that range"
    r"|integers are at most 2\*\*53 \(9007199254740992\) either side of 0|numbers must be finite"
    r"|a field name: .+"
    r"|groups nest at most \d+ deep|a definition holds at most \d+ conditions"
    r"|segment \d+ does not exist|unknown consent purpose '.*'"
    r"|a segment cannot contain itself|segments would refer in a cycle: .+"
)
# An audience states its problems after the pointer of the condition at fault.
AUDIENCE_PROBLEM = re.compile(r"/\S*: (.+)")
# An experience's rules beyond its schema: a variant's content fits its placement's content
# schema and its strings are Liquid (a schema per placement, which is data); variant names are
# unique; the allocation fits the number of variants; it ends after it starts; the placement
# named exists.
EXPERIENCE_RULES = re.compile(
    r"/\d+/content(/\S*)?: .+"
    r"|variant names must be unique"
    r"|a single allocation shows exactly one variant|a bandit needs at least two variants"
    r"|must be after starts_at"
    r"|No placement has the key '.*'\."
)
# A campaign's rules beyond its schema: the channels and segments it names exist (rows), a
# broadcast's time parses with its offset, a send step has a message or variants (and what
# goes with each), variants are named apart and weighted, one send step tests variants, and
# the journey stays within its size and branch depth; only signing channels have a secret.
CAMPAIGN_RULES = re.compile(
    r"channel \d+ does not exist"
    r"|at must be an ISO date and time with an offset"
    r"|a send step has a message or variants|allocation is for a step with variants"
    r"|another variant is named .+|a split needs a weight above 0"
    r"|variants are tested in one send step per campaign; \S+ has them already"
    r"|branches nest at most \d+ deep|a journey holds at most \d+ steps"
    # Rotating the secret of a channel whose kind signs nothing (the path names the channel).
    r"|[a-z_]+ channels have no signing secret"
)
# Names an object's keys must have (JSON Schema's propertyNames), which OpenAPI 3.0 cannot
# spell: identity settings' kind_limits are keyed by identifier kinds, items' attributes by
# facet names.
PROPERTY_NAMES = re.compile(
    r"'.*' does not match '\^\[a-z\]\[a-z0-9_\]\{0,31\}\\\\Z'"
    r"|facet names are 1 to 100 characters"  # catalog items' attributes
)


def _error_messages(body: dict) -> list[str]:
    if set(body) == {"code", "message"}:  # ingestion's errors
        return body["message"].split("; ")
    return [
        # A JSON document's errors say where: {"pointer", "message"}.
        m["message"] if isinstance(m, dict) and set(m) == {"pointer", "message"} else str(m)
        for field in body.values()
        for m in (field if isinstance(field, list) else [field])
    ]


# DELETE /api/v1/segments/{id}/ archives, as documented: the segment, its members and its
# export stay readable (definitions and history are kept).
ARCHIVING_DELETE = re.compile(r"DELETE /api/v1/segments/\d+/")


def _audience_rule(message: str) -> bool:
    problem = AUDIENCE_PROBLEM.fullmatch(message)
    return bool(problem and CONDITION_RULES.fullmatch(problem[1]))


def _as_designed(failure: Failure, response_body: bytes) -> bool:
    if isinstance(failure, UseAfterFree):
        return bool(ARCHIVING_DELETE.fullmatch(failure.free))
    if isinstance(failure, AcceptedNegativeData):
        return bool(LENIENT_TIME.search(failure.message))
    if isinstance(failure, RejectedPositiveData) and failure.status_code == 400:
        messages = _error_messages(json.loads(response_body))
        return bool(messages) and all(
            UNKNOWN_ID.fullmatch(m)
            or SKEW_OUT_OF_RANGE.fullmatch(m)
            or LONG_NUMBER_ID.fullmatch(m)
            or CROSS_FIELD_RULES.fullmatch(m)
            or PROPERTY_NAMES.fullmatch(m)
            or NOT_A_PHONE_NUMBER.fullmatch(m)
            or PRIVATE_ADDRESS.fullmatch(m)
            or UNKNOWN_PURPOSE.fullmatch(m)
            or CONDITION_RULES.fullmatch(m)
            or _audience_rule(m)
            or EXPERIENCE_RULES.fullmatch(m)
            or CAMPAIGN_RULES.fullmatch(m)
            for m in messages
        )
    return False


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, credentials):
    route = "ingest" if case.path.startswith("/v1/") else "api"
    CASES[case.operation.label] = CASES.get(case.operation.label, 0) + 1
    headers = {"Authorization": credentials[route]}
    response = case.call(headers=headers)
    try:
        case.validate_response(response, headers=headers)
    except FailureGroup as group:
        if not all(_as_designed(failure, response.content) for failure in group.exceptions):
            raise


STATEFUL_SCENARIOS = 20
STATEFUL_STEPS = 10


def test_links_from_creates_lead_to_working_routes(credentials):
    """Scenarios along the schema's links (cdp/schema.py): create a segment, campaign, channel,
    item, privacy request, rescan..., then read, change, archive or delete that very object."""
    steps: list[str] = []
    found: list[str] = []  # steps on an object's route that found it: links followed

    # The resources whose creates link to their objects' routes: scenarios are spent there,
    # not on the many operations no link leads from.
    linked = sorted(
        re.escape(path)
        for path, operations in schema.raw_schema["paths"].items()
        if path.startswith("/api/")
        and any(
            response.get("links")
            for response in operations.get("post", {}).get("responses", {}).values()
        )
    )
    resources = schema.include(path_regex=f"^({'|'.join(linked)})")

    class Scenario(resources.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": credentials["api"]}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            steps.append(case.operation.label)
            if "{" in case.path and response.status_code < 300:
                found.append(case.operation.label)
            try:
                case.validate_response(
                    response, headers=kwargs.get("headers"), recorder=self.recorder
                )
            except FailureGroup as group:
                if not all(_as_designed(f, response.content) for f in group.exceptions):
                    raise

    Scenario.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    print(
        f"\nfuzz: {len(steps)} stateful steps over {len(set(steps))} operations, "
        f"{len(found)} on a created object's route ({', '.join(sorted(set(found)))})"
    )
    # Which steps reach a created object depends on what the generator draws (most generated
    # creates are refused as invalid): the run must take its steps, and the links it follows
    # must be in the schema, whatever was drawn.
    assert len(steps) >= STATEFUL_SCENARIOS
    linked = {
        (path, method)
        for path, operations in schema.raw_schema["paths"].items()
        for method, operation in operations.items()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
        if response.get("links")
    }
    assert {("/api/v1/segments/", "post"), ("/api/v1/items/", "post")} <= linked
