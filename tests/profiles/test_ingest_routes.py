"""/v1/ routes are served right after SecurityMiddleware (profiles/ingest_middleware.py): no
session, CSRF or frame-options work for them, security headers still, and the other routes keep
the whole stack."""

import base64
import json

import pytest

from profiles.models import Event
from tests.wsgi import wsgi_call

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


# The web nodes' WSGI entry (cdp/wsgi.py: IngestApplication) serves the fixed /v1/ routes in
# front of Django's handler. Called in process: transactional tests, since the front closes a
# connection left outside autocommit, as Django's request signals do.


def _call(path: str, body: bytes, **environ: str) -> tuple[str, dict[str, str], bytes]:
    from cdp.wsgi import application

    return wsgi_call(
        application,
        "POST",
        path,
        body=body,
        **{"CONTENT_TYPE": "application/json", **AUTH, **environ},
    )


@pytest.mark.django_db(transaction=True)
def test_the_web_entry_serves_ingestion_in_front_of_django_with_security_headers(source):
    status, headers, content = _call(
        "/v1/track/", json.dumps({"userId": "u1", "event": "A"}).encode()
    )
    assert (status, json.loads(content)) == ("200 OK", {"success": True})
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Length"] == str(len(content))
    assert Event.objects.get().event == "A"
    status, _, content = _call("/v1/t", json.dumps({"anonymousId": "a1"}).encode())
    assert status.startswith("400") and set(json.loads(content)) == {"code", "message"}
    assert Event.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_web_entry_leaves_other_paths_to_django(source):
    assert _call("/v1/nothing", b"{}")[0].startswith("404")
    status, _, content = _call("/v1/projects/WRITE_KEY_test123/settings", b"", REQUEST_METHOD="GET")
    assert status == "200 OK" and "Segment.io" in json.loads(content)["integrations"]


@pytest.mark.django_db(transaction=True)
def test_a_failing_ingestion_view_is_answered_as_django_answers_it(source, monkeypatch):
    from django.core.signals import got_request_exception

    from profiles import ingest_urls

    def broken(request, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setitem(ingest_urls.INGEST_ROUTES, "/v1/track", (broken, {}))
    signalled = []

    def note(request, **kwargs):
        signalled.append(request.path)

    got_request_exception.connect(note)
    try:
        status, _, _ = _call("/v1/track", b"{}")
    finally:
        got_request_exception.disconnect(note)
    assert status.startswith("500") and signalled == ["/v1/track"]
