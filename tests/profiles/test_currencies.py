"""Revenue in one currency: orders converted at the admin-set rate when processed, orders in a
currency without a rate kept apart per currency (never added as they are), on the profile, in
the API and on the Data page; merges add the amounts kept apart; bad rates are form errors."""

from datetime import timedelta
from decimal import Decimal

import pytest

from access.models import AuditLog
from cdp import pipeline
from profiles.models import CurrencyRate, Profile
from profiles.services import currency_rate_set, profiles_absorb
from tests.identity.factories import event_build, events_store

pytestmark = pytest.mark.django_db

ORDER = "Order Completed"


def orders(source, user_id: str, *properties: dict) -> Profile:
    ids = events_store(
        [
            event_build(
                source, event=ORDER, user_id=user_id, at=timedelta(hours=n), properties=props
            )
            for n, props in enumerate(properties)
        ]
    )
    pipeline.events_process(event_ids=ids)
    return Profile.objects.get(identities__value=user_id)


def test_orders_are_converted_at_the_rate_or_kept_apart(source, admin_user, settings):
    settings.WORKSPACE_CURRENCY = "USD"
    currency_rate_set(currency="eur", rate=Decimal("1.10"), actor=admin_user)
    profile = orders(
        source,
        "u-money",
        {"revenue": 10},  # no currency: the workspace's
        {"revenue": 10, "currency": "USD"},
        {"revenue": "20.00", "currency": "eur"},
        {"revenue": 1200, "currency": "JPY"},
        {"total": 300, "currency": "JPY"},
        {"revenue": 5, "currency": "dollars"},  # not a code: kept apart, not guessed
    )
    assert profile.order_count == 6
    assert profile.revenue == Decimal("42.00")  # 10 + 10 + 20 * 1.10
    assert profile.revenue_unconverted == {"JPY": "1500.00", "DOLLARS": "5.00"}


def test_a_rate_set_later_converts_the_orders_processed_from_then_on(source, admin_user, settings):
    settings.WORKSPACE_CURRENCY = "EUR"
    orders(source, "u-late", {"revenue": 100, "currency": "GBP"})
    currency_rate_set(currency="GBP", rate=Decimal("1.2"), actor=admin_user)
    profile = orders(source, "u-late", {"revenue": 100, "currency": "GBP"})
    assert profile.revenue == Decimal("120.00")
    assert profile.revenue_unconverted == {"GBP": "100.00"}
    audit = AuditLog.objects.get(action="currency_rate.set")
    assert (audit.resource_id, audit.details["rate"]) == ("GBP", "1.2")


def test_a_merge_adds_up_the_amounts_kept_apart(source):
    survivor = orders(source, "u-a", {"revenue": 7, "currency": "JPY"}, {"revenue": 3})
    duplicate = orders(
        source, "u-b", {"revenue": 5, "currency": "JPY"}, {"revenue": 2, "currency": "CHF"}
    )
    profiles_absorb(pairs=[(survivor, duplicate)])
    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    assert survivor.revenue == Decimal("3.00")
    assert survivor.revenue_unconverted == {"JPY": "12.00", "CHF": "2.00"}
    assert duplicate.revenue_unconverted == {}


def test_the_profile_api_shows_the_amounts_kept_apart(source, admin_api):
    profile = orders(source, "u-api", {"revenue": 9}, {"revenue": 1200, "currency": "JPY"})
    computed = admin_api.get(f"/api/v1/profiles/{profile.pk}/").json()["computed"]
    assert computed["revenue"] == 9.0
    assert computed["revenue_unconverted"] == {"JPY": 1200.0}


def test_the_currencies_page_lists_rates_and_what_waits_for_one(
    source, staff_client, admin_user, marketer
):
    orders(source, "u-page", {"revenue": 1200, "currency": "JPY"})
    client = staff_client(admin_user)
    response = client.post("/data/currencies/set/", {"currency": "sek", "rate": "0.095"})
    assert response.status_code == 302
    assert CurrencyRate.objects.get().rate == Decimal("0.095")
    page = staff_client(marketer).get("/data/currencies/").content.decode()
    assert "SEK" in page and "0.095" in page
    assert "JPY" in page and "1,200.00" in page
    assert "Only an admin sets rates" in page


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"currency": "EURO", "rate": "1"}, "three-letter"),
        ({"currency": "E1R", "rate": "1"}, "three-letter"),
        ({"currency": "EUR", "rate": "-1"}, "greater than or equal to"),
        ({"currency": "EUR", "rate": "abc"}, "Enter a number"),
        ({"currency": "EUR", "rate": "1e400"}, ""),
        ({"currency": "USD", "rate": "1"}, "workspace currency"),
    ],
)
def test_a_bad_rate_is_a_form_error(staff_client, admin_user, settings, data, error):
    settings.WORKSPACE_CURRENCY = "USD"
    response = staff_client(admin_user).post("/data/currencies/set/", data)
    assert response.status_code == 400
    assert 'class="form-error"' in response.content.decode()
    assert error in response.content.decode()
    assert not CurrencyRate.objects.exists()


def test_removing_a_rate_keeps_new_orders_apart(source, staff_client, admin_user):
    currency_rate_set(currency="CAD", rate=Decimal("0.7"), actor=admin_user)
    assert staff_client(admin_user).post("/data/currencies/CAD/delete/").status_code == 302
    profile = orders(source, "u-cad", {"revenue": 10, "currency": "CAD"})
    assert profile.revenue == 0 and profile.revenue_unconverted == {"CAD": "10.00"}
