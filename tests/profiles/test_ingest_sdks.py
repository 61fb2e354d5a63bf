"""The real SDKs, unmodified, send identify/page/track/alias to a live server: every event
lands, once, and the pipeline puts them on the right profiles."""

from datetime import UTC, datetime

import pytest
import rudderstack.analytics.client as rudder_client
import rudderstack.analytics.request as rudder_request
import segment.analytics.client as segment_client
import segment.analytics.request as segment_request

from identity.models import Identity
from profiles.models import Event, Profile

pytestmark = pytest.mark.django_db(transaction=True)

SDKS = {
    "segment-sync": (segment_client.Client, {"sync_mode": True}),
    "segment-gzip-queued": (segment_client.Client, {"gzip": True}),
    "rudder-sync": (rudder_client.Client, {"sync_mode": True}),
    "rudder-gzip-queued": (rudder_client.Client, {}),  # gzip is rudder's default
}


@pytest.fixture(autouse=True)
def _close_sdk_connections():
    """The SDKs keep HTTP connections alive in module-level sessions; close them so the live
    server's threads (and their database connections) end with the test."""
    yield
    segment_request._session.close()
    rudder_request._session.close()


def _live_profile(profile: Profile) -> Profile:
    while profile.merged_into_id:
        profile = Profile.objects.get(pk=profile.merged_into_id)
    return profile


@pytest.mark.parametrize("sdk", SDKS)
def test_a_real_sdk_sends_events_that_land_on_the_right_profile(live_server, source, sdk):
    client_class, options = SDKS[sdk]
    errors = []
    client = client_class(
        "WRITE_KEY_test123",
        host=live_server.url,
        on_error=lambda error, batch: errors.append(error),
        max_retries=1,
        **options,
    )
    when = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    client.page(anonymous_id="anon-1", name="Home", properties={"path": "/"})
    client.identify(
        user_id=42, anonymous_id="anon-1", traits={"email": "Jane@Example.com", "name": "Jane"}
    )
    client.track(user_id=42, event="Order Completed", properties={"revenue": 39.95}, timestamp=when)
    client.alias(previous_id="old-login-7", user_id=42)
    client.flush()
    if not options.get("sync_mode"):
        client.join()
    assert errors == []

    events = {event.type: event for event in Event.objects.filter(source=source)}
    assert sorted(events) == ["alias", "identify", "page", "track"]
    assert events["identify"].user_id == "42"
    assert events["identify"].traits["email"] == "Jane@Example.com"
    assert events["track"].timestamp == when
    assert events["track"].properties == {"revenue": 39.95}
    assert events["alias"].payload["previousId"] == "old-login-7"

    # Processed by the pipeline (inline here): one person, one profile.
    assert not Event.objects.filter(processed_at__isnull=True).exists()
    profiles = {_live_profile(event.profile).pk for event in events.values()}
    assert len(profiles) == 1
    person = Profile.objects.get(pk=profiles.pop())
    assert person.traits["email"] == "Jane@Example.com"
    identities = set(Identity.objects.filter(profile=person).values_list("kind", "value"))
    assert {("user_id", "42"), ("anonymous_id", "anon-1")} <= identities


def test_an_sdk_resending_the_same_messages_stores_them_once(live_server, source):
    client = segment_client.Client("WRITE_KEY_test123", host=live_server.url, sync_mode=True)
    for _ in range(2):
        client.track(user_id="u1", event="Clicked", message_id="fixed-id")
    assert Event.objects.filter(message_id="fixed-id").count() == 1
