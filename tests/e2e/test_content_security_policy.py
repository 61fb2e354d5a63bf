"""Every page, visited as an admin in a real browser under the Content-Security-Policy,
runs no blocked script or style: the browser reports no violation (`securitypolicyviolation`
events and console errors). The pages are found by following the site's own links from the
dashboard, over demo data, plus the pages no link leads to."""

from collections import deque
from collections.abc import Iterator
from io import StringIO
from urllib.parse import urljoin, urlsplit

import pytest
from django.core.management import call_command

from campaigns.models import Campaign
from consent.services import privacy_request_create
from segments.models import Segment

pytestmark = pytest.mark.e2e

# Collected before any page script runs (init scripts are not subject to the page's CSP).
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${where}`);
});
"""
UNLINKED = [
    "/admin/",
    "/api/docs/",
    "/accounts/2fa/",
    "/accounts/2fa/webauthn/",
    "/accounts/2fa/recovery-codes/",
    "/accounts/sessions/",
    "/accounts/password/change/",
]
# Not pages: leaving, downloads, JSON, links inside messages, the schema file.
SKIP = ("/accounts/logout/", "/api/", "/m/", "/v1/", "/metrics", "/healthz", "/static/")
MAX_PAGES = 120


@pytest.fixture
def page(browser) -> Iterator:
    """A page that keeps the Content-Security-Policy (the suite's other pages bypass it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def violations_while(page, visit) -> list[str]:
    console: list[str] = []
    page.on(
        "console",
        lambda msg: (
            console.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    visit()
    return console + page.evaluate("window.__csp || []")


def test_the_violation_listener_sees_an_inline_script(page, live_server, admin_user, login):
    """The check below can fail: an inline script added to a page is reported."""
    page.add_init_script(LISTEN)
    login(admin_user)

    def add_inline_script():
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.ran = 1'; document.body.appendChild(s); }"
        )
        page.wait_for_function("() => window.__csp.length > 0")

    found = violations_while(page, add_inline_script)
    assert any("script-src" in v for v in found), found
    assert page.evaluate("window.ran") is None


def test_no_page_breaks_the_content_security_policy(page, live_server, admin_user, login, shot):
    call_command("seed_demo", profiles=8, seed=7, stdout=StringIO())
    # Pages of objects the demo does not make: a segment, a campaign, a privacy request.
    Segment.objects.create(
        name="Germans", definition={"trait": "country", "op": "eq", "value": "DE"}
    )
    campaign = Campaign.objects.create(name="Welcome", status="draft")
    campaign.versions.create(number=1, definition={"trigger": {"event": "Signed Up"}, "steps": []})
    privacy_request_create(regulation_type="ACCESS", subject={"email": "someone@example.com"})
    page.add_init_script(LISTEN)
    login(admin_user)
    origin = live_server.url
    queue = deque(["/", *UNLINKED])
    seen: set[str] = set(queue)
    broken: dict[str, list[str]] = {}
    statuses: dict[str, int] = {}
    while queue and len(statuses) < MAX_PAGES:
        path = queue.popleft()
        box: dict[str, int] = {}

        def visit(path=path, box=box):
            response = page.goto(origin + path)
            box["status"] = response.status if response else 0
            page.wait_for_load_state("networkidle")

        found = violations_while(page, visit)
        statuses[path] = box["status"]
        if found:
            broken[path] = found
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
            url = urlsplit(urljoin(origin + path, href))
            link = url.path + (f"?{url.query}" if url.query else "")
            if (
                f"{url.scheme}://{url.netloc}" == origin
                and not url.path.startswith(SKIP)
                and "format=csv" not in url.query
                and "export" not in url.path
                and link not in seen
            ):
                seen.add(link)
                queue.append(link)
    shot("csp-walk-last-page")
    assert broken == {}
    assert len(statuses) >= 25, sorted(statuses)
    assert not [p for p, s in statuses.items() if s >= 500], statuses
