"""Property-based tests: the fast and the explaining validators agree on every message, and no
body, bytes or headers make the ingestion endpoints answer a 500."""

import base64
import gzip

import fastjsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from profiles.schemas import FAST_VALIDATORS, MESSAGE_TYPES, MESSAGE_VALIDATORS

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
IDS = SCALARS | st.text(min_size=250, max_size=260) | st.lists(SCALARS, max_size=2)
TIMES = (
    SCALARS
    | st.datetimes().map(lambda d: d.isoformat())
    | st.sampled_from(["2024-01-02T03:04:05.678Z", "Tue, 02 Jan 2024 03:04:05 GMT", "0", "-1"])
)
MESSAGES = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*MESSAGE_TYPES, "bogus"]) | JSON,
        "userId": IDS,
        "anonymousId": IDS,
        "previousId": IDS,
        "groupId": IDS,
        "messageId": IDS,
        "event": IDS,
        "name": IDS,
        "category": IDS,
        "timestamp": TIMES,
        "originalTimestamp": TIMES,
        "sentAt": TIMES,
        "properties": JSON,
        "traits": JSON,
        "context": JSON | st.fixed_dictionaries({}, optional={"userAgent": JSON, "traits": JSON}),
        "integrations": JSON,
        "writeKey": JSON,
    },
)
ROUTES = st.sampled_from(
    [
        "/v1/identify",
        "/v1/track",
        "/v1/page",
        "/v1/screen",
        "/v1/group",
        "/v1/alias",
        "/v1/batch",
        "/v1/import",
        "/v1/i",
        "/v1/t",
        "/v1/p",
        "/v1/s",
        "/v1/g",
        "/v1/a",
        "/v1/b",
    ]
)
BODIES = (
    MESSAGES
    | st.fixed_dictionaries(
        {"batch": st.lists(MESSAGES | JSON, max_size=4)},
        optional={"context": JSON, "integrations": JSON, "sentAt": TIMES, "writeKey": JSON},
    )
    | JSON
)
AUTHORIZATIONS = st.sampled_from(
    [
        "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode(),
        "Basic " + base64.b64encode(b"WRITE_KEY_test123").decode(),
        "Basic " + base64.b64encode(b"nope:").decode(),
        "Basic \xff\xfe",
        "Bearer WRITE_KEY_test123",
        "",
    ]
) | st.text(max_size=40)
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@settings(max_examples=600, deadline=None)
@given(message_type=st.sampled_from(MESSAGE_TYPES), message=MESSAGES)
def test_the_fast_validator_agrees_with_jsonschema(message_type, message):
    message = {**message, "type": message_type}
    try:
        FAST_VALIDATORS[message_type](message)
        fast_valid = True
    except fastjsonschema.JsonSchemaException:
        fast_valid = False
    assert fast_valid == MESSAGE_VALIDATORS[message_type].is_valid(message)


def _assert_answered(response):
    assert response.status_code in {200, 400, 401, 405, 413}, response.content
    body = response.json()
    if response.status_code == 200:
        assert body == {"success": True}
    else:
        assert set(body) == {"code", "message"} and body["message"]


@pytest.mark.django_db
@FUZZ
@given(route=ROUTES, body=BODIES, gzipped=st.booleans(), content_type=st.text(max_size=30))
def test_random_json_bodies_never_get_a_500(client, source, route, body, gzipped, content_type):
    data = orjson.dumps(body)
    if gzipped:
        data = gzip.compress(data)
    auth = "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode()
    response = client.generic(
        "POST", route, data=data, content_type=content_type, HTTP_AUTHORIZATION=auth
    )
    _assert_answered(response)


@pytest.mark.django_db
@FUZZ
@given(route=ROUTES, data=st.binary(max_size=300), gzip_header=st.booleans())
def test_random_bytes_never_get_a_500(client, source, route, data, gzip_header):
    extra = {"HTTP_CONTENT_ENCODING": "gzip"} if gzip_header else {}
    auth = "Basic " + base64.b64encode(b"WRITE_KEY_test123:").decode()
    response = client.generic(
        "POST", route, data=data, content_type="text/plain", HTTP_AUTHORIZATION=auth, **extra
    )
    _assert_answered(response)


@pytest.mark.django_db
@FUZZ
@given(
    route=ROUTES,
    body=BODIES,
    authorization=AUTHORIZATIONS,
    encoding=st.sampled_from(["gzip", "deflate", "br", "", "identity"]) | st.text(max_size=10),
    retry=st.text(max_size=5),
    query=st.sampled_from(["", "writeKey=WRITE_KEY_test123", "writeKey=", "writeKey=x&writeKey=y"]),
    method=st.sampled_from(["POST", "GET", "PUT", "OPTIONS", "DELETE"]),
)
def test_random_headers_never_get_a_500(
    client, source, route, body, authorization, encoding, retry, query, method
):
    response = client.generic(
        method,
        f"{route}?{query}" if query else route,
        data=orjson.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=authorization,
        HTTP_CONTENT_ENCODING=encoding,
        HTTP_X_RETRY_COUNT=retry,
    )
    if method == "OPTIONS":
        assert response.status_code == 204
    else:
        _assert_answered(response)
