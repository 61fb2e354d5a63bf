"""Real-browser fixtures: headless Debian chromium driven by Playwright's sync API against
pytest-django's live server. Every test here is marked `e2e`. Do not set
DJANGO_ALLOW_ASYNC_UNSAFE at import time in a test module: the `browser` fixture sets it for as
long as the browser runs.

    def test_something(page, live_server, marketer, login):
        login(marketer)                     # through the real login form
        page.goto(live_server.url + "/profiles/")
        shot("profiles")                    # test-artifacts/<name>.png, for a human to look at
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from tests.conftest import PASSWORD, TOTP_SECRET, totp_code

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _roles_exist(transactional_db) -> None:
    """The live server needs a transactional database, and flushing it after each test drops the
    role groups that a data migration created: put them back before each test."""
    from django.contrib.auth.models import Group

    from access.roles import ROLES

    for role in ROLES:
        Group.objects.get_or_create(name=role)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One chromium per test module. Playwright's sync API runs an event loop in this thread,
    and Django refuses ORM calls from a thread with a running loop unless told it is deliberate:
    the variable is set only while the browser lives (set at import time it would leak into
    every other test, e.g. into `check --deploy` subprocesses, which rightly refuse it)."""
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser) -> Iterator:
    # Playwright's waits evaluate strings in the page, which the site's Content-Security-Policy
    # (no eval) refuses: test pages bypass it. test_content_security_policy.py checks the
    # policy itself on pages that keep it.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def login(page, live_server) -> Callable[[User], None]:
    """login(user): sign in through the real login form (and, for a user with a TOTP
    authenticator, the second-factor form with the code their app would show) and wait for
    the dashboard."""

    def sign_in(user: User) -> None:
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_login", user.email)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        if "/accounts/2fa/authenticate/" in page.url:
            page.fill("input[name=code]", totp_code(TOTP_SECRET))
            page.click("button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")

    return sign_in


@pytest.fixture
def shot(page) -> Callable[[str], Path]:
    """shot(name): a full-page screenshot in test-artifacts/ (gitignored)."""

    def take(name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
