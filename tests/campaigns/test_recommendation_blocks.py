"""Recommendation blocks in messages: `{% for item in recommendations.<slot> limit: N %}` is
served by the recommendations app for the recipient, only when a template names it."""

from __future__ import annotations

import pytest

from campaigns import services
from campaigns.messages import render
from campaigns.models import Delivery
from campaigns.recommended import RecommendationSlots
from identity.models import Identity
from tests.campaigns.conftest import delivery_make
from tests.recommendations.conftest import build_shop

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
