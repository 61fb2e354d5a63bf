"""Rows for the profile API tests, written straight to the tables the pipeline fills."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from identity.models import Identity
from profiles.models import Event, Profile

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_profile(*, identities: dict[str, str] | None = None, **fields) -> Profile:
    fields.setdefault("first_seen", T0)
    fields.setdefault("last_seen", T0 + timedelta(days=2))
    profile = Profile.objects.create(**fields)
    for kind, value in (identities or {}).items():
        Identity.objects.create(kind=kind, value=value, profile=profile)
    return profile


def make_event(profile: Profile, source, *, n: int, at: datetime, **fields) -> Event:
    return Event.objects.create(
        source=source,
        profile=profile,
        message_id=f"msg-{profile.pk}-{n}",
        type=fields.pop("type", "track"),
        event=fields.pop("event", "Product Viewed"),
        timestamp=at,
        received_at=at + timedelta(seconds=1),
        payload={},
        **fields,
    )


def shopper(**traits) -> Profile:
    return make_profile(
        traits={"name": "Ada Lovelace", **traits},
        context={"locale": "en-GB"},
        identities={"email": "ada@example.com", "user_id": "u-1", "anonymous_id": "anon-1"},
        event_count=12,
        session_count=3,
        order_count=2,
        revenue=Decimal("150.50"),
        first_order_at=T0,
        last_order_at=T0 + timedelta(days=1),
    )
