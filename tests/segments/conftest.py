"""Builders for segment tests: profiles with traits, computed columns, events, identities."""

import datetime as dt
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from identity.models import Identity
from profiles.models import Event, Profile

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


def make_profile(
    source: Any,
    *,
    traits: dict | None = None,
    events: list[tuple[str, dt.datetime, dict]] | None = None,
    identifiers: list[str] | None = None,
    **computed: Any,
) -> Profile:
    if "revenue" in computed:
        computed["revenue"] = Decimal(str(computed["revenue"]))
    profile = Profile.objects.create(traits=traits or {}, **computed)
    Event.objects.bulk_create(
        [
            Event(
                source=source,
                message_id=f"m-{next(_ids)}",
                type="track",
                event=name,
                timestamp=at,
                received_at=at,
                properties=props,
                profile=profile,
            )
            for name, at, props in events or []
        ]
    )
    for kind in identifiers or []:
        Identity.objects.create(
            kind=kind, value=f"{kind}-{profile.pk}@example.com", profile=profile
        )
    return profile


@pytest.fixture
def profile_maker(source) -> Callable[..., Profile]:
    def make(**kwargs: Any) -> Profile:
        return make_profile(source, **kwargs)

    return make


@pytest.fixture(autouse=True)
def _loopback_receivers_allowed(settings):
    # Segment webhooks go through the outbound guard (access.outbound), which refuses loopback:
    # these tests' receivers listen on 127.0.0.1, as an on-prem receiver would be allowed.
    settings.OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
