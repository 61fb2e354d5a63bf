"""Build a two-group segment in a real browser, watch the live count change, save it, open its
page and ask why a profile is in it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from profiles.models import Event, Profile
from segments.models import Segment

pytestmark = pytest.mark.e2e


@pytest.fixture
def shoppers(source):
    now = timezone.now()
    people = {}
    for name, country, plan, views in [
        ("Anna", "DE", "pro", 2),
        ("Ben", "DE", "pro", 0),
        ("Carl", "DE", "free", 1),
        ("Dora", "FR", "pro", 3),
        ("Emil", "AT", "free", 0),
    ]:
        profile = Profile.objects.create(
            traits={"name": name, "country": country, "plan": plan}, last_seen=now
        )
        for n in range(views):
            Event.objects.create(
                source=source,
                message_id=f"{name}-{n}",
                type="track",
                event="Product Viewed",
                timestamp=now - timedelta(hours=n + 1),
                received_at=now,
                properties={"category": "Shoes"},
                profile=profile,
            )
        people[name] = profile
    return people


def _count(page) -> str:
    return page.locator("[data-preview-count]").inner_text()


def test_build_a_two_group_segment_watch_the_count_save_and_open_it(
    page, live_server, marketer, login, shoppers, shot
):
    login(marketer)
    page.goto(f"{live_server.url}/segments/new/")
    # The starter definition (country is DE) is counted as soon as the page loads.
    page.wait_for_function(
        "document.querySelector('[data-preview-count]')?.textContent.trim() === '3'"
    )

    root_head = page.locator("[data-segment-builder] > .cond-group > .cond-head")
    root_head.locator("[data-add=group]").click()
    first = page.locator('[data-pointer="/all/1/all/0"]')
    first.locator("input[aria-label=Trait]").fill("plan")
    first.locator("input[aria-label=Value]").fill("pro")
    page.wait_for_function(
        "document.querySelector('[data-preview-count]')?.textContent.trim() === '2'"
    )

    root_head.locator("[data-add=group]").click()
    second = page.locator('[data-pointer="/all/2/all/0"]')
    second.locator("select[aria-label='Condition kind']").select_option("event")
    second = page.locator('[data-pointer="/all/2/all/0"]')
    second.locator("input[aria-label=Event]").fill("Product Viewed")
    page.wait_for_function(
        "document.querySelector('[data-preview-count]')?.textContent.trim() === '1'"
    )
    assert (
        "People whose country is “DE” and whose plan is “pro” and who did “Product Viewed”"
        in page.locator(".preview-panel .words").inner_text()
    )
    shot("segments-builder")

    page.fill("#id_name", "German pro viewers")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{live_server.url}/segments/*/")
    segment = Segment.objects.get(name="German pro viewers")
    assert segment.definition == {
        "all": [
            {"trait": "country", "op": "eq", "value": "DE"},
            {"all": [{"trait": "plan", "op": "eq", "value": "pro"}]},
            {"all": [{"event": "Product Viewed"}]},
        ]
    }
    assert page.locator("h1").inner_text().startswith("German pro viewers")
    assert page.locator("[data-segment-size]").inner_text() == "1"
    assert f"#{shoppers['Anna'].pk}" in page.locator("table.data").first.inner_text()

    page.fill("input[name=profile]", str(shoppers["Carl"].pk))
    page.click("text=Explain")
    page.wait_for_selector("#explanation .why")
    explanation = page.locator("#explanation").inner_text()
    assert "not a member" in explanation and "value: 'free'" in explanation
    shot("segments-detail")


def _count_is(page, expected: int) -> None:
    page.wait_for_function(
        f"document.querySelector('[data-preview-count]')?.textContent.trim() === '{expected}'"
    )


def test_an_event_condition_on_the_first_or_last_time(
    page, live_server, marketer, login, shoppers, source, shot
):
    # Dora's first view was 20 days ago; Anna's and Carl's first views are from today.
    Event.objects.create(
        source=source,
        message_id="Dora-old",
        type="track",
        event="Product Viewed",
        timestamp=timezone.now() - timedelta(days=20),
        received_at=timezone.now(),
        properties={"category": "Hats"},
        profile=shoppers["Dora"],
    )
    login(marketer)
    page.goto(f"{live_server.url}/segments/new/")
    _count_is(page, 3)
    condition = page.locator('[data-pointer="/all/0"]')
    condition.locator("select[aria-label='Condition kind']").select_option("event")
    condition = page.locator('[data-pointer="/all/0"]')
    condition.locator("input[aria-label=Event]").fill("Product Viewed")
    _count_is(page, 3)  # did it at least once: Anna, Carl, Dora

    condition.locator("select[aria-label=Occurrence]").select_option("first")
    condition = page.locator('[data-pointer="/all/0"]')
    # The count and window widgets give way to "when": within the last 30 days by default.
    assert condition.locator("select[aria-label='Count operator']").count() == 0
    assert condition.locator("select[aria-label=Operator]").input_value() == "within_last"
    _count_is(page, 3)
    condition.locator("input[aria-label=Days]").fill("7")
    _count_is(page, 2)  # Dora first viewed 20 days ago
    words = page.locator(".preview-panel .words")
    assert "People who first did “Product Viewed” in the last 7 days" in words.inner_text()
    shot("segments-builder-first-time")

    condition.locator("select[aria-label=Occurrence]").select_option("last")
    condition = page.locator('[data-pointer="/all/0"]')
    condition.locator("input[aria-label=Days]").fill("7")
    _count_is(page, 3)  # everyone's last view is from today
    assert "People who last did “Product Viewed” in the last 7 days" in words.inner_text()

    condition.locator("select[aria-label=Occurrence]").select_option("first")
    condition = page.locator('[data-pointer="/all/0"]')
    condition.locator("select[aria-label=Operator]").select_option("before")
    condition.locator("input[aria-label=Date]").fill(
        (timezone.now() - timedelta(days=10)).date().isoformat()
    )
    _count_is(page, 1)  # only Dora had a first view before ten days ago
    page.fill("#id_name", "Early viewers")
    page.click("button[type=submit].primary")
    page.wait_for_url(f"{live_server.url}/segments/*/")
    segment = Segment.objects.get(name="Early viewers")
    assert segment.definition == {
        "all": [
            {
                "event": "Product Viewed",
                "first": {
                    "op": "before",
                    "value": (timezone.now() - timedelta(days=10)).date().isoformat(),
                },
            }
        ]
    }
    assert page.locator("[data-segment-size]").inner_text() == "1"
