"""Browser-test fixtures: the real app (create_app) served on an ephemeral 127.0.0.1 port from a thread,
over SQLite with capture providers, sandbox Zoom and a FrozenClock; Debian's chromium driven by Playwright.

Tests wait on the page (auto-retrying ``expect``), never on the clock. Screenshots go to tests/screenshots/.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.test_pages_fixtures import (  # noqa: F401  (fixtures: SQLite, two locations with sign-ins)
    OTHER_EMAIL,
    PASSWORD,
    sqlite_only,
    two_worlds_fixture,
)
from web.app import create_app

CHROMIUM = os.environ.get("PUNCTUAL_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parents[1] / "screenshots"

sync_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no chromium at {CHROMIUM} (scripts/test installs it)", allow_module_level=True)


@pytest.fixture
def live_server(factory, clock, runtime, two_worlds):
    app = create_app(factory=factory, clock=clock, runtime=runtime)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def browser_instance():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser_instance):
    context = browser_instance.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    yield pg
    context.close()


def shot(page, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page, base: str, email: str = "alice@example.com", password: str = PASSWORD) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def enhanced(page) -> None:
    """Wait until the page's scripts have attached (dialogs, picker): a click before that is a plain link."""
    sync_api.expect(page.locator("html[data-enhanced=true]")).to_have_count(1)
