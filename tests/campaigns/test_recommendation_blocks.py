"""Recommendation blocks in messages: `{% for item in recommendations.<slot> limit: N %}` is
served by the recommendations app for the recipient, only when a template names it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.db.models import Value
from django.db.models.functions import Concat
from django.utils import timezone

from campaigns import services
from campaigns.messages import render
from campaigns.models import Delivery, DeliveryEvent, RecommendationImpression
from campaigns.recommended import RecommendationSlots
from campaigns.tracking import click_token_read, click_url
from identity.models import Identity
from recommendations.models import Item
from recommendations.services import recommender_drift_check
from tests.campaigns.conftest import delivery_make
from tests.recommendations.conftest import build_shop, train

pytestmark = pytest.mark.django_db

BLOCK = (
    "<ul>{% for item in recommendations.buy_again limit: 2 %}"
    "<li><a href=\"{{ item.url | default: 'https://shop.example.com/' }}\">{{ item.title }}</a>"
    "</li>{% endfor %}</ul>"
)


def test_an_email_carries_the_recipients_recommendations(
    source, smtp, email_channel, make_campaign
):
    shop = build_shop(source, people=4)
    user_id, profile = next(iter(shop.people.items()))
    Identity.objects.create(kind="email", value="buyer@example.com", profile=profile)
    campaign = make_campaign(
        {
            "name": "Again",
            "trigger": {"event": "Never"},
            "steps": [
                {"wait": {"seconds": 0}},
                {
                    "send": {
                        "channel": email_channel.pk,
                        "message": {"subject": "For you", "html": BLOCK},
                    }
                },
            ],
        }
    )
    delivery = delivery_make(campaign, profile, email_channel)
    services.delivery_send(delivery_id=delivery.pk)

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT, delivery.last_error
    html = smtp.to("buyer@example.com")[0].get_body(("html",)).get_content()
    titles = [line.split(">")[-1] for line in html.split("</a>")[:-1]]
    assert len(titles) == 2
    bought_titles = {
        f"{'Spade' if i.startswith('a') else 'Pan'} {i[1:]}" for i in shop.bought[user_id]
    }
    assert set(titles) <= bought_titles
    assert "/m/c/" in html  # the item links are click-tracked like any link


def test_a_template_without_a_block_serves_nothing(source):
    shop = build_shop(source, people=2)
    slots = RecommendationSlots(next(iter(shop.people.values())))
    render("Hi {{ profile.id }}", {"profile": {"id": 1}, "recommendations": slots}, html=True)
    assert slots.served == {}
    render(
        "{% for item in recommendations.trending limit: 1 %}{{ item.title }}{% endfor %}",
        {"recommendations": slots},
        html=True,
    )
    assert list(slots.served) == ["trending"]


def test_an_unknown_slot_is_an_empty_block(source):
    shop = build_shop(source, people=2)
    slots = RecommendationSlots(next(iter(shop.people.values())))
    out = render(
        "[{% for item in recommendations.nope %}{{ item.title }}{% endfor %}]",
        {"recommendations": slots},
        html=True,
    )
    assert out == "[]"


LINKED_BLOCK = (
    "{% for item in recommendations.home limit: 3 %}"
    '<a href="{{ item.url }}?utm_source=email">{{ item.title }}</a>'
    '{% endfor %}<a href="https://shop.example.com/">Shop</a>'
)
BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 Safari/605.1"}
SCANNER = {"HTTP_USER_AGENT": "Barracuda Sentinel link scanner"}


def test_clicks_on_recommendation_blocks_give_each_run_its_click_through(
    source, smtp, email_channel, make_campaign, client, staff_client, marketer
):
    shop = build_shop(source, people=6)
    Item.objects.update(url=Concat(Value("https://shop.example.com/p/"), "external_id"))
    run = train()
    assert run.is_serving, run.decision_reason
    campaign = make_campaign(
        {
            "name": "Picked for you",
            "trigger": {"event": "Never"},
            "steps": [
                {"wait": {"seconds": 0}},
                {
                    "send": {
                        "channel": email_channel.pk,
                        "message": {"subject": "For you", "html": LINKED_BLOCK},
                    }
                },
            ],
        }
    )
    links = {}
    for n, profile in enumerate(list(shop.people.values())[:3]):
        Identity.objects.create(kind="email", value=f"r{n}@example.com", profile=profile)
        delivery = delivery_make(campaign, profile, email_channel)
        services.delivery_send(delivery_id=delivery.pk)
        html = smtp.to(f"r{n}@example.com")[0].get_body(("html",)).get_content()
        links[n] = re.findall(r'href="(https?://[^"]+/m/c/[^"]+)"', html)
        assert len(links[n]) == 4  # three items and the shop's home page
    # Clicked minutes after the send (a click within seconds is a link scanner's).
    Delivery.objects.update(sent_at=timezone.now() - dt.timedelta(minutes=5))

    def follow(url, **headers):
        return client.get(url.split("example.com", 1)[1] if "/m/c/" in url else url, **headers)

    assert follow(links[0][1], **BROWSER).status_code == 302  # a person takes an item
    assert follow(links[0][2], **BROWSER).status_code == 302  # and another: one block clicked
    assert follow(links[1][3], **BROWSER).status_code == 302  # the shop link is no block
    assert follow(links[2][0], **SCANNER).status_code == 302  # a scanner is no person

    assert RecommendationImpression.objects.filter(model_run=run, slot="home").count() == 3
    on_blocks = DeliveryEvent.objects.filter(kind="click", recommendation__isnull=False)
    assert on_blocks.count() == 3 and on_blocks.exclude(bot_reason="").count() == 1
    check = recommender_drift_check()
    assert (check.run, check.impressions, check.clicks) == (run, 3, 1)
    page = staff_client(marketer).get("/recommendations/models/").content.decode()
    assert "<strong>33%</strong> (1 of 3 blocks clicked by a person" in page


def test_a_click_link_names_its_block_only_when_it_leads_to_a_served_item(source):
    shop = build_shop(source, people=2)
    Item.objects.update(url=Concat(Value("https://shop.example.com/p/"), "external_id"))
    slots = RecommendationSlots(next(iter(shop.people.values())))
    item = slots["trending"][0]
    assert slots.slot_of(item["url"]) == "trending"
    assert slots.slot_of(item["url"] + "?utm_source=x") == "trending"
    assert slots.slot_of(item["url"] + "0") == ""  # another item whose id starts the same
    assert slots.slot_of("https://shop.example.com/") == ""
    token = click_url(delivery_id=7, url=item["url"], slot="trending").rstrip("/").split("/")[-1]
    assert click_token_read(token) == (7, item["url"], "trending")
