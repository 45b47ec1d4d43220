"""The booking page in a real browser (Playwright driving the Debian chromium): the visitor's time zone
is detected, a contact books, sees the confirmation with the sandbox Zoom link, and cancels through the
cancellation link from their confirmation email. Screenshots go to tests/screenshots/booking-*.png.

Own minimal live-server fixture (a werkzeug server in a thread around the test app); the worker is
driven by the test (``runtime.tick()``), the clock is frozen."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from automations.store.models import Appointment, Calendar, Message
from tests.factories import publish
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    app_fixture,
    confirmation_doc,
    spy_runtime_fixture,
)

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")


@pytest.fixture
def db_url(sqlite_url) -> str:  # one database is enough for the browser
    return sqlite_url


@pytest.fixture
def live_server(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def page(live_server) -> Iterator:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(timezone_id="Europe/London", viewport={"width": 900, "height": 1100})
        yield context.new_page()
        context.close()
        browser.close()


def test_book_confirm_and_cancel_in_the_browser(page, live_server, factory, world, clock, runtime):
    expect = playwright.expect
    doc = confirmation_doc()
    doc["steps"][0]["body"] = "Join: {{appointment.meeting_location}} Cancel: {{appointment.cancellation_link}}"
    with factory() as s, s.begin():
        publish(s, world, doc, clock.now())
        cal = s.get(Calendar, world.calendar_id)
        cal.availability = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        cal.description = "A 30-minute video consultation."
    SHOTS.mkdir(exist_ok=True)

    page.goto(f"{live_server}/book/test-clinic/consultation")
    # The script picked the browser's zone: London times (10:00 New York is 15:00 London).
    expect(page.get_by_label("Times are shown in")).to_have_value("Europe/London")
    expect(page.get_by_role("heading", name="Tuesday, November 3")).to_be_visible()
    page.screenshot(path=str(SHOTS / "booking-1-slots.png"), full_page=True)

    page.get_by_role("listitem").filter(has_text="3:00 PM").first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Your details")).to_be_visible()
    page.get_by_role("button", name="Book").click()  # empty: errors beside the fields
    expect(page.get_by_text("Enter your name").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "booking-2-errors.png"), full_page=True)
    page.get_by_label("Name").fill("Robin Visitor")
    page.get_by_label("Email").fill("robin@example.com")
    page.get_by_label("Phone").fill("+44 7700 900123")
    page.get_by_role("button", name="Book").click()
    expect(page.get_by_role("heading", name="You're booked")).to_be_visible()
    expect(page.locator("#meeting-location")).to_contain_text("being created")

    runtime.tick()  # the worker: meeting made, confirmation sent
    # The page refreshes itself while the link is pending.
    expect(page.get_by_role("link", name=re.compile(r"sandbox\.punctual\.invalid"))).to_be_visible(timeout=10_000)
    expect(page.get_by_role("link", name="Add to Google Calendar")).to_be_visible()
    page.screenshot(path=str(SHOTS / "booking-3-confirmed.png"), full_page=True)

    with factory() as s:
        appt = s.scalar(select(Appointment))
        email = s.scalar(select(Message).where(Message.channel == "email", Message.appointment_id == appt.id))
    cancel_url = re.search(r"Cancel: (\S+)", email.body).group(1)
    page.goto(cancel_url.replace("http://127.0.0.1:5000", live_server))
    expect(page.get_by_role("heading", name="Cancel this appointment?")).to_be_visible()
    page.get_by_role("button", name="Yes, cancel it").click()
    expect(page.get_by_role("heading", name="Your appointment is cancelled")).to_be_visible()
    page.screenshot(path=str(SHOTS / "booking-4-cancelled.png"), full_page=True)
    with factory() as s:
        assert s.get(Appointment, appt.id).status == "cancelled"
