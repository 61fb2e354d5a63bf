"""Personal data leaves only through the gate (access.pii): every API route and every page,
walked as callers who may not see PII (a marketer's session, a key with every read scope but
`pii:read`), answers no email, phone, user id, anonymous id, IP, user agent, location or PII
trait value of the people in the database; the same walk as an admin and as a `pii:read` key
shows every one of them somewhere (so the walk really reaches them)."""

import base64
import json
import re
from collections.abc import Iterator

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from access.auth import SCOPES
from access.services import api_key_create, audit_record
from consent import services as consent_services
from identity.models import MatchCandidate
from profiles.models import Profile, QuarantinedMessage
from segments.services.definitions import segment_create
from segments.services.refresh import segment_refresh

pytestmark = pytest.mark.django_db

PEOPLE = [
    {
        "userId": "usr-walk-7f3a9c21",
        "anonymousId": "anon-walk-4d2e8b90",
        "email": "walkeria.leak@pii-check.example",
        "phone": "+4915112345678",
        "name": "Walkeria Leakington",
        "ip": "198.51.100.77",
        "userAgent": "Mozilla/5.0 (WalkTest; PiiCheck) Gecko/20100101 LeakFox/1.0",
        "latitude": 52.5200081,
    },
    {
        "userId": "usr-walk-0b1c2d3e",
        "anonymousId": "anon-walk-99aa88bb",
        "email": "second.person@pii-check.example",
        "phone": "+4917098765432",
        "name": "Secunda Personova",
        "ip": "192.0.2.201",
        "userAgent": "Mozilla/5.0 (WalkTest; SecondAgent) LeakKit/2.0",
        "latitude": 48.1371079,
    },
]
NEEDLES = sorted({str(value) for person in PEOPLE for value in person.values()})
READ_SCOPES = [scope for scope in SCOPES if scope.endswith(":read") and scope != "pii:read"]
# Not walked: Django's admin (superusers only; its own masking is not ours) and allauth's
# account pages (the signed-in user's own data).
SKIPPED_PREFIXES = ("admin/", "accounts/")
PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _ingest(client, source) -> None:
    auth = "Basic " + base64.b64encode(f"{source}:".encode()).decode()
    batch = []
    for n, person in enumerate(PEOPLE):
        context = {
            "ip": person["ip"],
            "userAgent": person["userAgent"],
            "location": {"latitude": person["latitude"], "longitude": 13.4049540, "city": "X"},
            "page": {"url": f"https://shop.example/account?email={person['email']}"},
        }
        ids = {"userId": person["userId"], "anonymousId": person["anonymousId"]}
        traits = {
            "email": person["email"],
            "phone": person["phone"],
            "name": person["name"],
            "plan": "pro",
        }
        batch += [
            {
                "type": "identify",
                "messageId": f"walk-i-{n}",
                **ids,
                "traits": traits,
                "context": context,
            },
            {
                "type": "track",
                "messageId": f"walk-t-{n}",
                **ids,
                "event": "Order Completed",
                "properties": {"revenue": 42, "email": person["email"]},
                "context": context,
            },
        ]
    response = client.generic(
        "POST",
        "/v1/batch",
        data=json.dumps({"batch": batch}).encode(),
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert response.status_code == 200, response.content


@pytest.fixture
def world(
    client, source, admin_user, compliance, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    with django_capture_on_commit_callbacks(execute=True):
        _ingest(client, "WRITE_KEY_test123")
    profiles = list(Profile.objects.filter(merged_into__isnull=True).order_by("pk"))
    assert len(profiles) == 2, "each person resolves to one profile"
    first, second = profiles
    segment = segment_create(
        name="Pro plan", definition={"all": [{"trait": "plan", "op": "eq", "value": "pro"}]}
    )
    segment_refresh(segment=segment)
    MatchCandidate.objects.create(
        profile_a=first,
        profile_b=second,
        probability=0.9,
        weight=5.0,
        explanation={
            "fields": [
                {
                    "path": "email",
                    "kind": "email",
                    "left": PEOPLE[0]["email"],
                    "right": PEOPLE[1]["email"],
                    "level": "else",
                    "weight": -3.0,
                    "role": "",
                },
                {
                    "path": "phone",
                    "kind": "phone",
                    "left": PEOPLE[0]["phone"],
                    "right": PEOPLE[1]["phone"],
                    "level": "else",
                    "weight": -2.0,
                    "role": "conflict",
                },
                {
                    "path": "name",
                    "kind": "text",
                    "left": PEOPLE[0]["name"],
                    "right": PEOPLE[1]["name"],
                    "level": "else",
                    "weight": -1.0,
                    "role": "",
                },
            ],
            "conflicts": ["phone"],
            "prior_weight": -5.0,
            "weight": 5.0,
            "probability": 0.9,
        },
    )
    QuarantinedMessage.objects.create(
        source=source,
        received_at=timezone.now(),
        reason="invalid",
        errors=[{"path": "/userId", "message": "too long"}],
        message={"userId": PEOPLE[0]["userId"], "traits": {"email": PEOPLE[0]["email"]}},
    )
    audit_record(
        actor=None, action="view", resource="profile", profile_id=first.pk, ip=PEOPLE[0]["ip"]
    )
    request = consent_services.privacy_request_create(
        regulation_type="ACCESS", subject={"email": PEOPLE[0]["email"]}
    )
    consent_services.privacy_request_verify(request=request, actor=compliance, note="id card")
    request = consent_services.privacy_request_process(request=request)
    assert request.export_file
    return {
        "profile_id": first.pk,
        "segment_id": segment.pk,
        "request_id": request.pk,
        "source_id": source.pk,
    }


def _routes(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _routes(entry.url_patterns, route)
        else:
            yield route, entry


def _url(route: str, ids: dict[str, int]) -> str | None:
    if route.startswith("^") or "(?P" in route:
        return None  # regex routes: the ingestion aliases of /v1/ (POST only)

    def fill(match: re.Match) -> str:
        name = match.group(2)
        if name in ids:
            return str(ids[name])
        if name == "writeKey":
            return "WRITE_KEY_test123"
        return "1" if match.group(1) == "int" else "x"

    return "/" + PARAM.sub(fill, route)


def _walk_urls(ids: dict[str, int]) -> tuple[list[str], list[str]]:
    api, pages = [], []
    for route, _ in _routes(get_resolver().url_patterns):
        if route.startswith(SKIPPED_PREFIXES):
            continue
        url = _url(route, ids)
        if url is None:
            continue
        (api if url.startswith("/api/") else pages).append(url)
    # Pages and endpoints that show people when given a query.
    api += [
        f"/api/v1/identity/lookup/?kind=email&value={PEOPLE[0]['email']}",
        "/api/v1/identity/suggestions/?status=all",
        f"/api/v1/segments/{ids['segment_id']}/explain/{ids['profile_id']}/",
    ]
    pages += [
        f"/segments/{ids['segment_id']}/explain/?profile={ids['profile_id']}",
        f"/profiles/{ids['profile_id']}/events/",
    ]
    return sorted(set(api)), sorted(set(pages))


def _body(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode("utf-8", "replace")
    return response.content.decode("utf-8", "replace")


def _walk(client, urls: list[str]) -> dict[str, set[str]]:
    """Which needles each URL's answer contains (URLs that answer 5xx fail the walk)."""
    found: dict[str, set[str]] = {}
    for url in urls:
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        body = _body(response)
        body_json_unescaped = body.replace("\\/", "/")
        found[url] = {n for n in NEEDLES if n in body or n in body_json_unescaped}
    return found


def _segment_export(ids) -> str:
    return f"/api/v1/segments/{ids['segment_id']}/export.csv"


def test_no_route_or_page_shows_personal_data_to_callers_without_pii_rights(
    world, marketer, client
):
    api_urls, page_urls = _walk_urls(world)
    assert len(api_urls) > 40 and len(page_urls) > 30
    client.force_login(marketer)
    leaks = {url: hits for url, hits in _walk(client, api_urls + page_urls).items() if hits}
    assert leaks == {}, f"marketer session sees PII: {leaks}"

    key = api_key_create(name="walk", scopes=READ_SCOPES).key
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    leaks = {url: hits for url, hits in _walk(api, api_urls).items() if hits}
    assert leaks == {}, f"key without pii:read sees PII: {leaks}"
    print(f"PII walk: {len(api_urls)} API routes, {len(page_urls)} pages, 0 leaks")


def test_the_same_walk_shows_personal_data_to_admins_and_pii_read_keys(world, admin_user, client):
    api_urls, page_urls = _walk_urls(world)
    client.force_login(admin_user)
    seen = set().union(*_walk(client, api_urls + page_urls).values())
    assert seen == set(NEEDLES), f"never shown to an admin: {set(NEEDLES) - seen}"

    key = api_key_create(name="walk", scopes=[*READ_SCOPES, "pii:read"]).key
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    hits = _walk(api, api_urls)
    assert set().union(*hits.values()) == set(NEEDLES)
    # The member list and CSV export, the identity lookup and the access export give the key
    # what it asked for.
    assert PEOPLE[0]["email"] in hits[_segment_export(world)]
    assert PEOPLE[0]["email"] in hits[f"/api/v1/privacy-requests/{world['request_id']}/export/"]
