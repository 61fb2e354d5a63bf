"""The OpenAPI schema says what is served: /v1/ ingestion documented, lists as envelopes, JSON
404s for paths that are no id, the docs page for key holders, newline-proof patterns."""

import pytest
import yaml

from access.auth import SCOPES
from segments import conditions

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_ingestion_routes_are_documented_with_segment_bodies_and_code_message_errors(schema):
    for route in ("identify", "track", "page", "screen", "group", "alias", "batch", "import"):
        operation = schema["paths"][f"/v1/{route}"]["post"]
        assert operation["security"] == [{"writeKey": []}]
        assert {"200", "400", "401", "413"} <= set(operation["responses"])
        assert "application/json" in operation["requestBody"]["content"]
    track = schema["components"]["schemas"]["SegmentTrack"]
    assert "event" in track["required"] and "properties" in track["properties"]
    assert schema["components"]["schemas"]["IngestError"]["required"] == ["code", "message"]
    assert "/v1/projects/{writeKey}/settings" in schema["paths"]


def test_lists_are_documented_as_the_envelopes_they_return(schema):
    for path in ("/api/v1/audit/", "/api/v1/identity/merges/", "/api/v1/segments/"):
        body = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert body["schema"]["type"] == "object"
        assert set(body["schema"]["properties"]) >= {"results", "next"}


def test_the_privacy_export_is_documented_as_a_json_document(schema):
    export = schema["paths"]["/api/v1/privacy-requests/{request_id}/export/"]["get"]
    assert export["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "object"


@pytest.mark.parametrize(
    "path", ["/api/v1/profiles/abc/", "/api/v1/segments/x1/members/", "/api/v1/nothing-here/"]
)
def test_a_path_that_is_no_id_answers_a_json_404(api_client_with_scopes, path):
    response = api_client_with_scopes("profiles:read", "segments:read").get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_pages_still_answer_an_html_404(admin_user, client):
    client.force_login(admin_user)
    response = client.get("/profiles/abc/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_the_docs_page_answers_a_key_holder(api_client_with_scopes):
    response = api_client_with_scopes(*SCOPES).get("/api/docs/")
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["plan\n", "plan\n\n", "address.city\n"])
def test_a_trait_path_with_a_trailing_newline_is_refused(path):
    with pytest.raises(conditions.InvalidDefinition):
        conditions.validate({"all": [{"trait": path, "op": "eq", "value": "pro"}]})
