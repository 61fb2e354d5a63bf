"""Campaign revenue in the workspace currency: goal events in other currencies converted at the
admin-set rate, those without a rate counted apart per currency (API and page)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns.results import campaign_results
from profiles.services import currency_rate_set
from tests.campaigns.conftest import ORDER, person, track
from tests.campaigns.test_experiments import enter, experiment

pytestmark = pytest.mark.django_db


def test_revenue_is_converted_or_counted_apart_per_currency(
    source,
    smtp,
    email_channel,
    make_campaign,
    admin_user,
    admin_api,
    staff_client,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.WORKSPACE_CURRENCY = "USD"
    currency_rate_set(currency="EUR", rate=Decimal("1.25"), actor=admin_user)
    campaign = make_campaign(experiment(email_channel, weights=(100, 0)))
    ann = person(email_address="ann@example.com")
    start = timezone.now()
    enter(source, ann, django_capture_on_commit_callbacks)
    for hours, properties in enumerate(
        (
            {"revenue": 10},
            {"revenue": 8, "currency": "eur"},
            {"revenue": 1000, "currency": "JPY"},
            {"revenue": 500, "currency": "JPY"},
        ),
        start=1,
    ):
        track(source, ann, ORDER, at=start + dt.timedelta(hours=hours), properties=properties)

    arm = next(v for v in campaign_results(campaign=campaign)["variants"] if v["recipients"])
    assert (arm["converted"], arm["revenue"]) == (1, 20.0)  # 10 + 8 * 1.25
    assert arm["revenue_unconverted"] == {"JPY": 1500.0}
    api = admin_api.get(f"/api/v1/campaigns/{campaign.pk}/results/").json()
    assert any(v["revenue_unconverted"] == {"JPY": 1500.0} for v in api["variants"])
    page = staff_client(admin_user).get(f"/campaigns/{campaign.pk}/results/").content.decode()
    assert "20.00 USD" in page and "+ 1,500.00 JPY" in page
