"""A shop's page on another origin loads the vendored snippet: the visitor sees the banner
their segment gets, the click goes through the ingestion API, and the results page counts it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from access.services import source_create
from experiences.models import Decision
from experiences.services import experience_create, placement_create
from identity.models import Identity
from profiles.models import Event, Profile
from segments.services import segment_create, segment_refresh
from tests.conftest import WRITE_KEY


def shop_page(server: str) -> str:
    return f"""<!doctype html><html><body>
<section id="hero" data-cdp-placement="home_hero">
  <h1 data-cdp-field="title">Welcome</h1>
  <a id="cta" data-cdp-href="link" href="#">Shop now</a>
</section>
<script src="{server}/static/js/personalize.js" data-write-key="{WRITE_KEY}"
        data-host="{server}"></script>
</body></html>"""


@pytest.fixture
def shop(live_server) -> Iterator[str]:
    """The shop's page, served by a server of its own on 127.0.0.1: another origin than the
    live server (localhost), and a loopback one, since chromium keeps pages it thinks public
    from calling loopback servers (local network access)."""
    body = shop_page(live_server.url).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def vip_experience(transactional_db):
    source_create(name="Shop", write_key=WRITE_KEY)
    placement = placement_create(
        fields={
            "key": "home_hero",
            "name": "Home hero",
            "content_schema": {
                "type": "object",
                "required": ["title"],
                "properties": {"title": {"type": "string"}, "link": {"type": "string"}},
            },
            "default_content": {"title": "Welcome"},
        },
        actor=None,
    )
    segment = segment_create(
        name="VIPs", definition={"computed": "revenue", "op": "gte", "value": 1000}
    )
    vip = Profile.objects.create(traits={"nickname": "<b>Ada</b>"}, revenue=5000)
    Identity.objects.create(kind="anonymous_id", value="anon-vip", profile=vip)
    segment_refresh(segment=segment)
    return experience_create(
        fields={
            "placement": placement,
            "name": "VIP banner",
            "status": "active",
            "allocation": "single",
            "audience": {"segment": segment.pk},
            "variants": [
                {
                    "name": "gold",
                    "content": {
                        "title": "Hello {{ profile.traits.nickname }}, your VIP offer",
                        "link": "https://shop.example/vip?a=1&b=2",
                    },
                }
            ],
        },
        actor=None,
    )


def test_the_snippet_shows_the_vip_banner_and_the_click_is_counted(
    page, live_server, shop, vip_experience, marketer, login, shot
):
    page.add_init_script('localStorage.setItem("ajs_anonymous_id", JSON.stringify("anon-vip"))')
    page.on("console", lambda m: print("console:", m.text))
    page.on("response", lambda r: print("response:", r.status, r.url))
    page.goto(f"{shop}/")
    page.wait_for_selector("#hero.cdp-rendered")
    title = page.inner_text("#hero h1")
    # The trait's markup arrives as text (escaped by Liquid), never as an element.
    assert title == "Hello <b>Ada</b>, your VIP offer"
    assert page.locator("#hero h1 b").count() == 0
    assert page.get_attribute("#cta", "href") == "https://shop.example/vip?a=1&b=2"
    shot("experiences-shop-banner")
    decision = Decision.objects.get()
    assert page.get_attribute("#hero", "data-cdp-decision") == str(decision.decision_id)
    clicked = page.evaluate(
        """() => new Promise((resolve) => {
            document.addEventListener('cdp:clicked', () => resolve(true), {once: true});
            document.querySelector('#hero h1').click();
        })"""
    )
    assert clicked
    kinds = set(
        Event.objects.filter(properties__decision_id=str(decision.decision_id)).values_list(
            "event", flat=True
        )
    )
    assert kinds == {"Experience Viewed", "Experience Clicked"}

    # The results page counts the view and the click for the variant.
    login(marketer)
    page.goto(f"{live_server.url}/experiences/{vip_experience.pk}/results/")
    row = page.locator("tr[data-arm=gold]")
    assert row.locator("[data-figure=impressions]").inner_text() == "1"
    assert row.locator("[data-figure=clicks]").inner_text() == "1"
    shot("experiences-results")
    for name, path in (
        ("experiences-list", "/experiences/"),
        ("experiences-placements", "/experiences/placements/"),
        ("experiences-edit", f"/experiences/{vip_experience.pk}/"),
    ):
        page.goto(live_server.url + path)
        shot(name)
    vip = Identity.objects.get(value="anon-vip").profile_id
    page.goto(f"{live_server.url}/experiences/{vip_experience.pk}/preview/")
    page.fill("#id_profile", str(vip))
    page.click("button[type=submit]")
    page.wait_for_selector("#preview-content")
    assert "your VIP offer" in page.inner_text("#preview-content")
    shot("experiences-preview")
