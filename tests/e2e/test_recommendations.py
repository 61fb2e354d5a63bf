"""Recommendations in a real browser: a catalog upload that a real worker imports while the
page shows its progress and then the bad rows by line; the models page (chart, champion,
promote and roll back); a profile's "Recommended for you" and "Buy again" blocks; the catalog
and an item page. Each page is shot at desktop and phone widths."""

import re

import pytest
from django.conf import settings
from django.db import connection

from recommendations.models import Item, ModelRun
from tests.conftest import celery_worker
from tests.recommendations.conftest import build_shop, buy, train

pytestmark = pytest.mark.e2e

WIDTHS = {"desktop": 1440, "phone": 390}


@pytest.fixture
def consent_defaults(transactional_db):
    """The transactional flush removed the purposes a data migration created."""
    from consent.defaults import defaults_install
    from consent.models import ConsentCategoryMapping, Purpose

    defaults_install(Purpose, ConsentCategoryMapping)


@pytest.fixture
def served(consent_defaults, source):
    shop = build_shop(source, people=24)
    run = train()
    assert run.is_serving, (run.status, run.message, run.decision_reason)
    return shop


def shots(page, shot, name: str) -> None:
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(100)  # let the layout settle at the new width
        shot(f"recommendations-{name}-{label}")
    page.set_viewport_size({"width": 1280, "height": 900})


def catalog_csv(good: int) -> str:
    lines = ["external_id,title,category,price,currency,availability,attr.colour"]
    lines += [
        f"sku-{n},Mug {n},Home > Kitchen > Mugs,{5 + n % 20}.50,EUR,in_stock,blue"
        for n in range(good)
    ]
    lines.insert(3, "sku-bad-price,Broken,Home,not-a-price,EUR,in_stock,")
    lines.insert(6, ",No id,Home,1,EUR,in_stock,")
    lines.insert(9, "sku-bad-stock,Odd,Home,1,EUR,sometimes,")
    return "\n".join(lines) + "\n"


@pytest.mark.worker
@pytest.mark.skipif(
    connection.vendor != "postgresql" or not settings.REDIS_URL,
    reason="a real worker needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)",
)
def test_a_catalog_upload_shows_its_progress_then_the_bad_rows_by_line(
    page, live_server, marketer, login, shot, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path
    upload = tmp_path / "catalog.csv"
    upload.write_text(catalog_csv(1200))
    with celery_worker(queue="default", env={"MEDIA_ROOT": str(tmp_path)}):
        login(marketer)
        page.goto(f"{live_server.url}/recommendations/")
        page.get_by_role("link", name="Upload catalog").first.click()
        page.set_input_files("input[type=file]", str(upload))
        page.get_by_role("button", name="Upload and import").click()
        page.wait_for_url(re.compile(r"/recommendations/imports/\d+/$"))
        assert page.locator("[role=progressbar]").count() == 1
        # htmx polls the progress until the worker is done; the last answer stops polling.
        page.wait_for_selector("[data-import-status=done]", timeout=60_000)

    assert page.locator("[role=progressbar]").get_attribute("aria-valuenow") == "100"
    assert page.locator("[data-created]").inner_text() == "1,200"
    assert page.locator("[data-bad]").inner_text() == "3"
    rows = page.locator("#bad-rows tbody tr")
    assert [rows.nth(i).locator("td").first.inner_text() for i in range(3)] == ["4", "7", "10"]
    assert "price" in rows.nth(0).inner_text()
    assert Item.objects.filter(external_id__startswith="sku-").count() == 1200
    shots(page, shot, "upload-done")


def test_a_bad_upload_gets_a_form_error(page, live_server, marketer, login, tmp_path):
    upload = tmp_path / "catalog.xlsx"
    upload.write_text("not a catalog")
    login(marketer)
    page.goto(f"{live_server.url}/recommendations/imports/new/")
    page.set_input_files("input[type=file]", str(upload))
    page.get_by_role("button", name="Upload and import").click()
    assert "must be .csv or .jsonl" in page.locator(".form-error").inner_text()


def test_the_models_page_charts_runs_and_promotes_then_rolls_back(
    page, live_server, marketer, login, served, shot
):
    champion = ModelRun.objects.get(is_serving=True)
    challenger = train("popularity")
    assert not challenger.is_serving

    login(marketer)
    page.goto(f"{live_server.url}/recommendations/models/")
    page.wait_for_function(
        "Chart.getChart(document.querySelector('canvas[data-chart]'))?.data.labels.length === 2"
    )
    serving_row = page.locator(f"tr[data-run='{champion.pk}']")
    assert "serving" in serving_row.inner_text()
    assert "Kept as challenger" in page.locator(f"tr[data-run='{challenger.pk}']").inner_text()
    shots(page, shot, "models")

    page.locator(f"tr[data-run='{challenger.pk}']").get_by_role("button", name="Promote").click()
    page.wait_for_url(f"{live_server.url}/recommendations/models/")
    assert (
        f"Run #{challenger.pk} (popularity) now serves." in page.locator(".messages").inner_text()
    )
    assert "serving" in page.locator(f"tr[data-run='{challenger.pk}']").inner_text()

    page.locator(f"tr[data-run='{champion.pk}']").get_by_role("button", name="Roll back").click()
    page.wait_for_url(f"{live_server.url}/recommendations/models/")
    assert ModelRun.objects.get(is_serving=True).pk == champion.pk

    # Every slot's list for one person, as the serving model gives it.
    person = next(iter(served.people.values()))
    page.fill("#example-profile", str(person.pk))
    page.get_by_role("button", name="Show lists").click()
    page.wait_for_selector("#examples [data-slot=trending] .rec-card")
    assert page.locator("#examples [data-slot]").count() == 4


def test_a_profile_page_shows_recommended_for_you_and_buy_again(
    page, live_server, marketer, login, served, shot
):
    user_id, person = next(iter(served.people.items()))
    group_prefix = "a" if "-A-" in user_id else "b"
    login(marketer)
    page.goto(f"{live_server.url}/profiles/{person.pk}/")
    home = page.locator("#profile-recommendations [data-slot=home]")
    home.locator(".rec-card").first.wait_for()
    assert "Recommended for you" in home.inner_text()
    titles = home.locator(".rec-card").all_inner_texts()
    # People in a taste group get their group's items first (12 per group), none they bought.
    keys = [text.splitlines()[1].split(" · ")[0] for text in titles]
    unbought = 12 - len(served.bought[user_id])
    assert len(keys) == 8 and all(key.startswith(group_prefix) for key in keys[:unbought])
    assert not set(keys) & served.bought[user_id]
    again = page.locator("#profile-recommendations [data-slot=buy_again]")
    bought = [
        t.splitlines()[1].split(" · ")[0] for t in again.locator(".rec-card").all_inner_texts()
    ]
    assert bought and set(bought) <= served.bought[user_id]
    page.locator("#profile-recommendations").scroll_into_view_if_needed()
    shots(page, shot, "profile")


def test_the_catalog_searches_and_an_item_shows_similar_and_bought_together(
    page, live_server, marketer, login, served, shot, source
):
    buy(source, "user-A-0", ["a0", "a3", "a5"], days_ago=1)
    buy(source, "user-A-2", ["a0", "a3"], days_ago=1)
    login(marketer)
    page.goto(f"{live_server.url}/recommendations/")
    assert "24 items" in page.locator(".result-note").inner_text()
    page.fill("input[name=q]", "Spade")
    page.wait_for_function(
        "document.querySelector('.result-note').textContent.includes('12 items')"
    )
    shots(page, shot, "catalog")

    page.get_by_role("link", name="Spade 0", exact=True).click()
    page.locator(".rec-card").first.wait_for()
    similar = page.locator(".rec-card").all_inner_texts()
    assert similar and all(text.splitlines()[1].startswith("a") for text in similar)
    together = page.locator(".plain-list li").all_inner_texts()
    assert [text.split(" a")[0] for text in together] == ["Spade 3", "Spade 5"]
    assert "in 2 orders with this one" in together[0]
    shots(page, shot, "item")
