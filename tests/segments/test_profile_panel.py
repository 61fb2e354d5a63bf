"""The profile page's audience panel (served by segments): segment memberships, the serving
models' scores, consent state with a link to the history for those who may open it, and the
reason a profile's revenue is 0 when consent is it."""

from decimal import Decimal

import pytest

from consent.services import consent_record
from profiles.models import Profile
from segments import services
from segments.models import ModelRun, ProfileScore

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(db):
    return Profile.objects.create(traits={"plan": "pro"}, order_count=2, event_count=5)


def _panel(client, profile):
    return client.get(f"/segments/profiles/{profile.pk}/panel/")


def test_the_panel_lists_segments_scores_and_consent(staff_client, marketer, person):
    segment = services.segment_create(
        name="Pro <plan>", definition={"trait": "plan", "op": "eq", "value": "pro"}
    )
    services.segment_refresh(segment=segment)
    run = ModelRun.objects.create(kind="purchase_30d", status="done", is_active=True)
    ProfileScore.objects.create(profile=person, kind="purchase_30d", value=0.42, run=run)
    ProfileScore.objects.create(profile=person, kind="predicted_ltv", value=123.4, run=run)
    consent_record(profile=person, purpose="email_marketing", granted=False, source="api")
    page = _panel(staff_client(marketer), person).content.decode()
    assert "Pro &lt;plan&gt;" in page and f"/segments/{segment.pk}/" in page
    assert "42%" in page and "123.40" in page
    assert "Email marketing" in page and "refused" in page and "by default" in page
    # Marketers cannot open the consent history, so the panel does not link to it.
    assert "Consent history" not in page


def test_compliance_gets_the_link_to_the_consent_history(staff_client, compliance, person):
    page = _panel(staff_client(compliance), person).content.decode()
    assert f'href="/privacy/profiles/{person.pk}/consents/"' in page


def test_a_profile_without_analytics_consent_says_why_its_revenue_is_zero(
    staff_client, marketer, person, settings
):
    settings.CONSENT_WITHOUT_ANALYTICS = "minimal"
    client = staff_client(marketer)
    assert "revenue-note" not in _panel(client, person).content.decode()
    consent_record(profile=person, purpose="analytics", granted=False, source="api")
    page = _panel(client, person).content.decode()
    assert "Revenue is 0 because consent stripped its events" in page
    assert "their 2 orders" in page
    person.revenue = Decimal("10.00")
    person.save()
    assert "revenue-note" not in _panel(client, person).content.decode()


def test_the_panel_is_refused_to_staff_without_a_role(staff_client, no_role_user, person):
    assert _panel(staff_client(no_role_user), person).status_code == 403


def test_the_profile_page_loads_the_panel(staff_client, marketer, person):
    page = staff_client(marketer).get(f"/profiles/{person.pk}/").content.decode()
    assert f'hx-get="/segments/profiles/{person.pk}/panel/"' in page


def test_a_missing_profile_is_a_404(staff_client, marketer):
    assert staff_client(marketer).get("/segments/profiles/999999/panel/").status_code == 404


def test_a_profile_without_scores_says_so(staff_client, marketer, person):
    page = _panel(staff_client(marketer), person).content.decode()
    assert "No serving model has scored this person yet." in page
