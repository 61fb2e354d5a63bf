"""The web nodes' server (`python -m cdp.web`, granian) serves the app as the tests' own server
does: a real SDK ingests through it (gzip included), errors keep their status and SDK shape,
pages and /healthz answer."""

import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import pytest
import segment.analytics.client as segment_client
import segment.analytics.request as segment_request

from profiles.models import Event
from tests.conftest import WRITE_KEY, _test_database_url

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
AUTH = "Basic " + b64encode(f"{WRITE_KEY}:".encode()).decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def web_server(source) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "WEB_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "4",
        "DB_CONN_MAX_AGE": "0",
        "DEBUG": "false",
    }
    env.pop("REDIS_URL", None)  # processing runs inline in the request: no worker needed
    process = subprocess.Popen(
        [sys.executable, "-m", "cdp.web"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stdout.read().decode()
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # answering (503: no broker in this set-up)
            except OSError:
                assert time.monotonic() < deadline, "the web server did not answer in 30 s"
                time.sleep(0.1)
        yield url
    finally:
        segment_request._session.close()
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _post(url: str, body: bytes, **headers: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_real_sdk_ingests_gzipped_batches_through_the_web_nodes_server(web_server, source):
    errors = []
    client = segment_client.Client(
        WRITE_KEY,
        host=web_server,
        gzip=True,
        sync_mode=True,
        max_retries=1,
        on_error=lambda error, batch: errors.append(error),
    )
    client.identify(user_id="web-1", traits={"email": "web@example.com"})
    client.track(user_id="web-1", event="Order Completed", properties={"revenue": 20})
    client.flush()
    assert errors == []
    events = list(Event.objects.filter(source=source, user_id="web-1").order_by("id"))
    assert [e.type for e in events] == ["identify", "track"]
    assert events[1].properties == {"revenue": 20}
    assert all(e.processed_at and e.profile_id == events[0].profile_id for e in events)


def test_the_web_nodes_server_keeps_ingestion_errors_in_the_sdk_shape(web_server, source):
    one = json.dumps({"userId": "u", "event": "Signed Up"}).encode()
    assert _post(f"{web_server}/v1/track", one, Authorization=AUTH) == (200, {"success": True})

    status, body = _post(f"{web_server}/v1/track", one, Authorization="Basic bm9wZTo=")
    assert status == 401 and body["code"] == "invalid_write_key"

    status, body = _post(f"{web_server}/v1/track", b'{"userId": ', Authorization=AUTH)
    assert status == 400 and set(body) == {"code", "message"}

    huge = gzip.compress(json.dumps({"batch": [{"userId": "u", "x": "y" * 600_000}]}).encode())
    status, body = _post(
        f"{web_server}/v1/batch", huge, Authorization=AUTH, **{"Content-Encoding": "gzip"}
    )
    assert status == 413 and set(body) == {"code", "message"}
    assert Event.objects.filter(source=source).count() == 1


def test_the_web_nodes_server_serves_pages(web_server):
    with urllib.request.urlopen(f"{web_server}/accounts/login/", timeout=10) as page:
        html = page.read().decode()
    assert page.status == 200 and "<form" in html


def test_a_web_process_loads_its_views_and_parsers_before_its_first_request():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gc, sys, cdp.wsgi; "
            "print(all(m in sys.modules for m in "
            "('profiles.ingest_views', 'segments.views', 'ua_parser_builtins.regexes', 'redis')))"
            # and leaves what it loaded out of the collector's full walks
            "; print(gc.get_freeze_count() > 100_000, len(gc.get_objects()) < 10_000)",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": _test_database_url()},
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.split() == ["True", "True", "True"]


def test_ingestion_answers_carry_their_length_and_a_preflight_has_no_body(web_server, source):
    connection = http.client.HTTPConnection(web_server.removeprefix("http://"), timeout=10)
    connection.request(
        "POST",
        "/v1/t",
        body=b'{"anonymousId": "a", "event": "Viewed"}',
        headers={"Authorization": AUTH},
    )
    answer = connection.getresponse()
    assert answer.read() == b'{"success":true}'
    assert answer.getheader("Content-Length") == "16" and not answer.getheader("Transfer-Encoding")
    connection.request("OPTIONS", "/v1/t", headers={"Origin": "https://shop.example.com"})
    preflight = connection.getresponse()
    assert preflight.read() == b""
    assert preflight.status == 204 and preflight.getheader("Content-Length") is None
    assert preflight.getheader("Access-Control-Allow-Origin") == "*"
    connection.close()
