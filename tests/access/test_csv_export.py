"""Every CSV the app writes neutralises formula cells (OWASP: prefix with a single quote)."""

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from access.csv_export import FORMULA_STARTS, csv_cell, csv_lines
from identity.models import Identity
from profiles.models import Profile
from segments.services.definitions import segment_create
from segments.services.refresh import segment_refresh

ATTACK = "=cmd|' /C calc'!A0"


@given(st.text())
def test_no_text_cell_starts_like_a_formula(text):
    cell = csv_cell(text)
    assert not cell.startswith(FORMULA_STARTS)
    assert cell in (text, "'" + text)


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_each_formula_start_is_quoted_and_numbers_are_kept(start):
    assert csv_cell(f"{start}1+1") == f"'{start}1+1"
    assert csv_cell(-3.5) == -3.5
    rows = list(csv.reader(io.StringIO("".join(csv_lines(["a"], [[f"{start}x"], [-2]])))))
    assert rows == [["a"], [f"'{start}x"], ["-2"]]


@pytest.mark.django_db
def test_a_segment_export_writes_a_hostile_user_id_inert(api_client_with_scopes):
    profile = Profile.objects.create(traits={"plan": "pro"})
    Identity.objects.create(profile=profile, kind="user_id", value=ATTACK)
    segment = segment_create(
        name="Pro", definition={"all": [{"trait": "plan", "op": "eq", "value": "pro"}]}
    )
    segment_refresh(segment=segment)
    api = api_client_with_scopes("segments:read", "pii:read")
    response = api.get(f"/api/v1/segments/{segment.pk}/export.csv")
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["user_id"] == "'" + ATTACK


@pytest.mark.django_db
def test_the_audit_csv_writes_a_hostile_actor_label_inert(compliance, client):
    from access.models import AuditLog

    AuditLog.objects.create(actor_label="@SUM(1+1)*cmd", action="view", resource="profile")
    client.force_login(compliance)
    response = client.get("/privacy/audit/?format=csv")
    body = b"".join(response.streaming_content).decode()
    assert "'@SUM(1+1)*cmd" in body
