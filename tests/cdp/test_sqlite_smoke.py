"""The embedded default: no DATABASE_URL and no REDIS_URL still migrates, bootstraps with demo
data, and ingests and processes an event inline."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

INGEST_ONE_EVENT = """
import base64, json
import django
django.setup()
from django.test import Client
from access.services import source_create
from identity.models import Identity
from profiles.models import Event, Profile

key = source_create(name="Smoke", write_key="smoke_write_key").key
auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
response = Client().post(
    "/v1/track",
    data=json.dumps({"userId": "smoke-user", "event": "Order Completed",
                     "properties": {"revenue": 12.5,
                                    "products": [{"product_id": "smoke-mug", "name": "Mug",
                                                  "price": 12.5}]}}),
    content_type="application/json",
    HTTP_AUTHORIZATION=auth,
)
event = Event.objects.get(user_id="smoke-user")

from decimal import Decimal
from access.services import api_key_create
from recommendations.models import Item
from recommendations.selectors import profile_history, served_items, serving_subject

Item.objects.create(external_id="smoke-lamp", title="Lamp", price=Decimal("30.10"))
subject = serving_subject(profile_id=event.profile_id)
served = served_items(["smoke-mug", "smoke-lamp"])
api_key = api_key_create(name="Smoke", scopes=["recommendations:read"]).key
listed = Client().get(
    f"/api/v1/profiles/{event.profile_id}/recommendations/?slot=home&k=5",
    HTTP_AUTHORIZATION=f"Bearer {api_key}",
)
by_identifier = Client().get(
    "/api/v1/recommendations/?user_id=smoke-user&k=5", HTTP_AUTHORIZATION=f"Bearer {api_key}"
)
print(json.dumps({
    "by_identifier": [by_identifier.status_code, by_identifier.json()["personal"]],
    "history": [[item, kind] for item, kind, _at in profile_history(subject=subject)],
    "prices": {key: str(item.price) for key, item in served.items()},
    "listed": listed.status_code,
    "status": response.status_code,
    "body": response.json(),
    "processed": event.processed_at is not None,
    "on_profile": Identity.objects.get(kind="user_id", value="smoke-user").profile_id
    == event.profile_id,
    "profiles": Profile.objects.count(),
    "demo_events": Event.objects.exclude(user_id="smoke-user").count(),
}))
"""


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_sqlite_default_migrates_bootstraps_and_ingests_inline(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'cdp.sqlite3'}",
        DJANGO_SETTINGS_MODULE="cdp.settings",
        CDP_ADMIN_PASSWORD="smoke-admin-password-1",
    )
    _run(["manage.py", "migrate", "--noinput", "-v0"], env)

    boot = _run(["manage.py", "bootstrap", "--profiles", "15", "--seed", "5"], env).stdout
    assert "Log in as admin@example.com with password smoke-admin-password-1" in boot
    assert "Open http://127.0.0.1:8000/" in boot
    assert "write key" in boot

    again = _run(["manage.py", "bootstrap", "--profiles", "15", "--seed", "5"], env).stdout
    assert "existing account" in again and "no demo data loaded" in again

    outcome = json.loads(_run(["-c", INGEST_ONE_EVENT], env).stdout.strip().splitlines()[-1])
    assert outcome["status"] == 200 and outcome["body"] == {"success": True}
    assert outcome["processed"] and outcome["on_profile"]
    assert outcome["profiles"] > 10
    assert outcome["demo_events"] > 15 * 10
    # Serving's written-out reads, on SQLite: a person's history, prices as the ORM gives them.
    assert outcome["history"] == [["smoke-mug", "purchase"]]
    assert outcome["prices"] == {"smoke-mug": "12.50", "smoke-lamp": "30.10"}
    assert outcome["listed"] == 200
    assert outcome["by_identifier"] == [200, True]  # the person's list, found by user_id
