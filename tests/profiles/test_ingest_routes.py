"""/v1/ routes are served right after SecurityMiddleware (profiles/ingest_middleware.py): no
session, CSRF or frame-options work for them, security headers still, and the other routes keep
the whole stack."""

import base64
import json

import pytest

from profiles.models import Event

pytestmark = pytest.mark.django_db

AUTH = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode()}


def test_ingestion_skips_the_session_and_csrf_stack_but_keeps_security_headers(
    client, source, marketer
):
    client.force_login(marketer)  # a browser with a staff session posting to /v1/ too
    client.cookies["csrftoken"] = "x" * 32
    response = client.post(
        "/v1/track",
        data=json.dumps({"userId": "u1", "event": "Clicked"}),
        content_type="application/json",
        **AUTH,
    )
    assert response.status_code == 200, response.content
    assert Event.objects.count() == 1
    assert not response.cookies  # no session or CSRF cookie refreshed
    assert "Cookie" not in response.get("Vary", "")
    assert "X-Frame-Options" not in response
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.wsgi_request.resolver_match.url_name == "ingest-track"


def test_an_unknown_ingestion_path_is_a_404(client, source):
    assert (
        client.post("/v1/nothing", data=b"{}", content_type="application/json").status_code == 404
    )


def test_other_routes_keep_the_whole_middleware_stack(client, marketer):
    client.force_login(marketer)
    response = client.get("/")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert "Cookie" in response["Vary"]
