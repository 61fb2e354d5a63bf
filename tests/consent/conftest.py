"""People with profiles, identities and events, written straight to the tables (identity
resolution is not what these tests are about)."""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.services import suppression_cache
from identity.models import Identity
from profiles.models import Event, Profile


@dataclass
class Person:
    profile: Profile
    email: str
    user_id: str
    phone: str


@pytest.fixture
def make_person(db, source):
    def make(
        email: str = "jane.doe@example.com",
        user_id: str = "user-jane-0001",
        phone: str = "+14155550123",
        events: int = 3,
    ) -> Person:
        profile = Profile.objects.create(
            traits={"email": email, "name": "Jane Doe", "phone": phone, "plan": "pro"},
            context={"ip": "203.0.113.7"},
        )
        Identity.objects.bulk_create(
            [
                Identity(kind="email", value=email.lower(), profile=profile),
                Identity(kind="user_id", value=user_id, profile=profile),
                Identity(kind="phone", value=phone, profile=profile),
                Identity(kind="anonymous_id", value=f"anon-{user_id}", profile=profile),
            ]
        )
        now = timezone.now()
        Event.objects.bulk_create(
            [
                Event(
                    source=source,
                    message_id=f"{user_id}-{i}",
                    type="track",
                    event="Order Completed" if i % 2 else "Product Viewed",
                    user_id=user_id,
                    anonymous_id=f"anon-{user_id}",
                    timestamp=now - timedelta(days=i),
                    received_at=now,
                    properties={"revenue": 10 + i},
                    traits={"email": email},
                    context={"traits": {"email": email}},
                    payload={"userId": user_id, "context": {"traits": {"email": email}}},
                    profile=profile,
                    processed_at=now,
                )
                for i in range(events)
            ]
        )
        return Person(profile=profile, email=email, user_id=user_id, phone=phone)

    return make


@pytest.fixture(autouse=True)
def _fresh_suppression_set():
    """Suppressions live in a per-process set; a rolled-back test must not leave its own."""
    suppression_cache.invalidate()
    yield
    suppression_cache.invalidate()
