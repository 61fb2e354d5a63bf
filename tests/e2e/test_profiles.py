"""Log in, search a profile, open it, see its timeline: in a real browser."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from identity.models import Identity
from profiles.models import Event, Profile

pytestmark = pytest.mark.e2e


@pytest.fixture
def shop_data(source):
    now = timezone.now()
    anna = Profile.objects.create(
        traits={"firstName": "Anna", "lastName": "Lindqvist", "email": "anna@example.org"},
        context={"device": {"type": "mobile"}, "os": {"name": "iOS"}, "locale": "sv-SE"},
        first_seen=now - timedelta(days=3),
        last_seen=now - timedelta(minutes=5),
        event_count=32,
        order_count=1,
        revenue=Decimal("89.90"),
    )
    for kind, value in [("user_id", "u-1001"), ("email", "anna@example.org")]:
        Identity.objects.create(kind=kind, value=value, profile=anna)
    # One event: the list hides profiles without any (bot visitors).
    other = Profile.objects.create(
        traits={"firstName": "Boris", "lastName": "Petrov"}, event_count=1
    )
    Identity.objects.create(kind="user_id", value="u-2002", profile=other)
    names = ["Product Viewed", "Product Added", "Checkout Started"]
    events = [
        Event(
            source=source,
            message_id=f"e2e-{n}",
            type="track",
            event=names[n % 3],
            timestamp=now - timedelta(hours=3, minutes=-n),
            received_at=now - timedelta(hours=3, minutes=-n),
            properties={"product_id": f"sku-{n}", "price": 19.5},
            payload={},
            profile=anna,
        )
        for n in range(31)
    ]
    events.append(
        Event(
            source=source,
            message_id="e2e-order",
            type="track",
            event="Order Completed",
            timestamp=now - timedelta(minutes=5),
            received_at=now - timedelta(minutes=5),
            properties={"order_id": "o-77", "revenue": 89.9, "currency": "EUR"},
            payload={},
            profile=anna,
        )
    )
    Event.objects.bulk_create(events)
    return anna


def test_an_admin_logs_in_finds_a_profile_and_reads_its_timeline(
    page, live_server, admin_user, login, shot, shop_data
):
    login(admin_user)
    shot("dashboard")
    assert page.locator("canvas#events-per-minute").is_visible()

    page.click("nav.mainnav >> text=Profiles")
    page.wait_for_url(f"{live_server.url}/profiles/")
    rows = page.locator("#results tbody tr")
    assert rows.count() == 2

    # Live search: typing swaps the results without a page load.
    page.fill("input[name=q]", "lindq")
    page.wait_for_function("document.querySelectorAll('#results tbody tr').length === 1")
    assert "q=lindq" in page.url
    assert "Anna Lindqvist" in page.locator("#results").inner_text()
    shot("profiles-search")

    page.click("#results >> text=Anna Lindqvist")
    page.wait_for_url(f"{live_server.url}/profiles/{shop_data.pk}/")
    assert page.locator("h1").inner_text() == "Anna Lindqvist"
    assert "u-1001" in page.locator("text=Identities >> xpath=..").inner_text()
    items = page.locator(".timeline-item")
    assert items.count() == 25
    assert "Order Completed" in items.first.inner_text()

    # "Load older events" appends the rest of the timeline in place.
    page.click("text=Load older events")
    page.wait_for_function("document.querySelectorAll('.timeline-item').length === 32")
    assert page.locator("text=Start of the timeline").is_visible()
    page.locator(".timeline-item summary").first.click()
    assert "o-77" in page.locator(".timeline-item pre.json").first.inner_text()
    shot("profile-360")


def test_a_wrong_password_shows_an_error_on_the_login_form(page, live_server, marketer, shot):
    page.goto(f"{live_server.url}/profiles/")
    page.wait_for_url(f"{live_server.url}/accounts/login/?next=/profiles/")
    page.fill("#id_login", marketer.email)
    page.fill("#id_password", "not-the-password")
    page.click("button[type=submit]")
    assert page.locator(".form-error").is_visible()
    shot("login-error")
