"""The profile page's consent state and segment memberships, in a real browser: the panel the
segments app serves loads in place, links to the segment, and (for compliance) to the consent
history."""

import pytest

from consent.services import consent_record
from profiles.models import Profile
from segments import services as segment_services

pytestmark = pytest.mark.e2e


@pytest.fixture
def member(db):
    person = Profile.objects.create(
        traits={"plan": "pro", "firstName": "Ada"}, event_count=4, order_count=1
    )
    segment = segment_services.segment_create(
        name="Pro customers", definition={"trait": "plan", "op": "eq", "value": "pro"}
    )
    segment_services.segment_refresh(segment=segment)
    consent_record(profile=person, purpose="analytics", granted=False, source="api")
    return person, segment


def test_the_profile_page_shows_consent_and_segments_and_links_to_the_history(
    page, live_server, compliance, login, shot, member
):
    person, segment = member
    login(compliance)
    page.goto(f"{live_server.url}/profiles/{person.pk}/")
    panel = page.locator("#profile-segments")
    panel.get_by_role("link", name="Pro customers").wait_for()
    consent = page.locator("#profile-consent")
    analytics = consent.locator("tr", has_text="Analytics")
    assert analytics.locator(".badge").inner_text() == "refused"
    assert "Revenue is 0 because consent stripped its events" in consent.inner_text()
    shot("profile-audience")
    consent.get_by_role("link", name="Consent history").click()
    page.wait_for_url(f"{live_server.url}/privacy/profiles/{person.pk}/consents/")
    page.go_back()
    page.locator("#profile-segments").get_by_role("link", name="Pro customers").click()
    page.wait_for_url(f"{live_server.url}/segments/{segment.pk}/")


def test_a_marketer_sees_the_consent_state_without_the_history_link(
    page, live_server, marketer, login, member
):
    person, _ = member
    login(marketer)
    page.goto(f"{live_server.url}/profiles/{person.pk}/")
    page.locator("#profile-consent tr", has_text="Analytics").wait_for()
    assert page.locator("#profile-consent").get_by_role("link", name="Consent history").count() == 0
