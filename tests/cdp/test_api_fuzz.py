"""schemathesis against the whole OpenAPI schema (/api/schema/): for every operation, a bounded
number of generated requests (the same ones on every run), sent through the real WSGI
application as an admin's API key (the management API) or a source's write key (ingestion).

Every check runs but two: no server error, every answer as documented (status code, content
type, headers, body schema), no unsupported method served, and so on. Not yet run: schemathesis'
`positive_data_acceptance` and `negative_data_rejection`, which hold the request schemas to
the validators' every rule; today ~30 operations validate more or less than their schema says
(empty strings, id ranges, query `null`s, `limit` bounds, fields that must be given together),
and the request schemas need those rules written into them before the two checks can run."""

import base64

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from access.auth import SCOPES
from access.services import api_key_create, source_create
from cdp.wsgi import application
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
    key = api_key_create(name="fuzz admin", scopes=list(SCOPES)).key
    return {
        "api": f"Bearer {key}",
        "ingest": "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode(),
    }


# Loaded when the module is collected: serving the schema reads no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


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
    case.call_and_validate(
        headers={"Authorization": credentials[route]},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
