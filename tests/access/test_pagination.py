"""Keyset cursors that decode but name a time the database cannot compare (out of range once
in UTC, or an offset PostgreSQL refuses) are an invalid cursor (400), not a 500."""

import base64
import json
from datetime import UTC, datetime

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from access.pagination import KeysetPagination
from profiles.models import Event, Profile

ORDERING = ("-timestamp", "-id")


def cursor(values: list) -> str:
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(values: list) -> list:
    return KeysetPagination()._decode(cursor(values), Event, ORDERING)


@pytest.mark.parametrize(
    "values",
    [
        ["0001-01-01T00:00:00+05:00", 1],
        ["9999-12-31T23:59:59-05:00", 1],
        ["2020-01-01T00:00:00", 1],
        ["2020-01-01T00:00:00+00:00", 2**63],
        ["2020-01-01T00:00:00+00:00", -(2**63) - 1],
    ],
)
def test_a_cursor_out_of_the_databases_range_is_invalid(values):
    with pytest.raises(ValidationError) as refused:
        decode(values)
    assert refused.value.detail == {"cursor": ["Invalid cursor."]}


def test_a_cursor_time_is_compared_in_utc():
    assert decode(["2020-01-01T00:00:00-23:59", 7]) == [
        datetime(2020, 1, 1, 23, 59, tzinfo=UTC),
        7,
    ]
    assert decode(["9999-12-31T23:59:59+00:00", 2**63 - 1])[1] == 2**63 - 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "values",
    [
        ["0001-01-01T00:00:00+05:00", 1],
        ["9999-12-31T23:59:59-05:00", 1],
        ["2020-01-01T00:00:00-23:59", 1],
    ],
)
def test_the_events_endpoint_answers_an_extreme_cursor_without_a_500(admin_user, values):
    profile = Profile.objects.create()
    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.get(f"/api/v1/profiles/{profile.pk}/events/?cursor={cursor(values)}")
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json() == {"cursor": ["Invalid cursor."]}
