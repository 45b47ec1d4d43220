"""Public booking pages through the Flask app: slots in the visitor's zone, the form with errors beside
fields, booking as a contact (matched by email), the confirmation page with the meeting link, .ics and
Google links, signed cancel/reschedule links that can't be replayed or outlive the appointment, and a
slot taken under real concurrent HTTP requests (SQLite and PostgreSQL) booked exactly once."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from automations.booking import booking_links
from automations.store.models import Appointment, Calendar, Contact, DomainEvent, Location, Message
from tests.factories import publish
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    app_fixture,
    confirmation_doc,
    spy_runtime_fixture,
)

TUESDAY_10_NY = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
HOURS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
PAGE = "/book/test-clinic/consultation"


@pytest.fixture
def browser(app):
    return app.test_client()


@pytest.fixture
def hours(factory, world):
    with factory() as s, s.begin():
        cal = s.get(Calendar, world.calendar_id)
        cal.availability = HOURS
        cal.appointments_per_slot = 1


def _token(html: str) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)


def _book(browser, start=TUESDAY_10_NY, **fields):
    form = browser.get(f"{PAGE}/book", query_string={"start": start.isoformat(), "tz": "America/New_York"})
    assert form.status_code == 200
    data = {"start": start.isoformat(), "tz": "America/New_York", "form_token": _token(form.text),
            "name": "Robin Visitor", "email": "robin@example.com", "phone": "+1 (212) 555-0199", "notes": "hi"}
    data.update(fields)
    return browser.post(f"{PAGE}/book", data=data)


def test_page_lists_free_slots_in_the_visitors_zone(browser, world, hours, factory, clock):
    page = browser.get(PAGE)
    assert page.status_code == 200
    assert "Consultation" in page.text and "Tuesday, November 3" in page.text
    # Monday's 09:00 slot (now) is gone: it starts now and notice is 0, so 09:00 is still offered; 08:30 never.
    assert "8:30 AM" not in page.text and "10:00 AM" in page.text
    london = browser.get(PAGE, query_string={"tz": "Europe/London"})
    assert 'value="Europe/London" selected' in london.text and "3:00 PM" in london.text
    assert browser.get("/book/test-clinic/nope").status_code == 404
    with factory() as s, s.begin():
        s.get(Location, world.location_id).slug = "clinic"
    assert browser.get("/book/clinic/consultation").status_code == 200


def test_book_as_a_visitor_then_manage_with_the_signed_link(browser, world, hours, factory, clock, runtime):
    with factory() as s, s.begin():
        publish(s, world, confirmation_doc(), clock.now())
    response = _book(browser)
    assert response.status_code == 303
    manage = response.headers["Location"]
    token = re.search(r"/book/a/([^?]+)", manage).group(1)
    with factory() as s:
        appt = s.scalar(select(Appointment))
        contact = s.get(Contact, appt.contact_id)
        assert (contact.first_name, contact.last_name, contact.email, contact.phone) == (
            "Robin", "Visitor", "robin@example.com", "+12125550199")
        assert appt.start_at == TUESDAY_10_NY and appt.notes == "hi"
        event = s.scalar(select(DomainEvent).where(DomainEvent.appointment_id == appt.id))
        assert event.payload["modified_by"] == "customer"
        appt_id = appt.id
    assert booking_links.appointment_id(browser.application.config["SECRET_KEY"], token) == appt_id

    pending = browser.get(manage)
    assert "You're booked" in pending.text and "being created" in pending.text
    runtime.tick()
    page = browser.get(manage).text
    link = re.search(r"https://sandbox\.punctual\.invalid/[^\"<]+", page).group(0)
    assert "calendar.google.com" in page and "event.ics" in page
    ics = browser.get(f"/book/a/{token}/event.ics")
    assert ics.mimetype == "text/calendar" and "DTSTART:20261103T150000Z" in ics.text and link in ics.text
    with factory() as s:
        email = s.scalar(select(Message).where(Message.appointment_id == appt_id, Message.channel == "email"))
        assert link in email.body

    # The cancellation link: a confirm page, then a form post with its own token.
    confirm = browser.get(f"/book/a/{token}/cancel")
    assert "Cancel this appointment?" in confirm.text
    assert browser.post(f"/book/a/{token}/cancel", data={"form_token": "forged"}).status_code == 400
    done = browser.post(f"/book/a/{token}/cancel", data={"form_token": _token(confirm.text)})
    assert done.status_code == 200 and "is cancelled" in done.text
    runtime.tick()
    with factory() as s:
        assert s.get(Appointment, appt_id).status == "cancelled"
        pending = s.scalars(select(Message).where(Message.appointment_id == appt_id, Message.status == "pending")).all()
        assert pending == []


def test_merge_field_links_are_real_and_signed(browser, world, factory, clock, runtime):
    doc = confirmation_doc()
    doc["steps"][0]["body"] = "Cancel: {{appointment.cancellation_link}} Move: {{appointment.reschedule_link}}"
    with factory() as s, s.begin():
        publish(s, world, doc, clock.now())
    _book(browser)
    runtime.tick()
    with factory() as s:
        email = s.scalar(select(Message).where(Message.channel == "email"))
        appt_id = email.appointment_id
    cancel_url = re.search(r"Cancel: (\S+)", email.body).group(1)
    move_url = re.search(r"Move: (\S+)", email.body).group(1)
    assert cancel_url.startswith("http://127.0.0.1:5000/book/a/") and cancel_url.endswith("/cancel")
    path = cancel_url.removeprefix("http://127.0.0.1:5000")
    assert browser.get(path).status_code == 200
    assert "Pick a new time" in browser.get(move_url.removeprefix("http://127.0.0.1:5000")).text
    # Tampering or swapping the id breaks the signature; another appointment's token opens only that one.
    token = path.split("/")[3]
    assert browser.get(f"/book/a/{token[:-2]}xx/cancel").status_code == 404
    forged = booking_links.token("another-secret", appt_id)
    assert browser.get(f"/book/a/{forged}/cancel").status_code == 404
    # After the appointment the link has expired.
    clock.set(TUESDAY_10_NY + timedelta(hours=1))
    expired = browser.post(path, data={"form_token": "x"})
    assert expired.status_code == 410 and "expired" in expired.text


def test_reschedule_through_the_link(browser, world, hours, factory, clock):
    token = re.search(r"/book/a/([^?]+)", _book(browser).headers["Location"]).group(1)
    page = browser.get(f"/book/a/{token}/reschedule")
    new_start = TUESDAY_10_NY + timedelta(hours=2)
    response = browser.post(f"/book/a/{token}/reschedule", data={
        "start": new_start.isoformat(), "tz": "America/New_York", "form_token": _token(page.text)})
    assert response.status_code == 303
    with factory() as s:
        appt = s.scalar(select(Appointment))
        assert appt.start_at == new_start and appt.rescheduled
        kinds = [e.payload.get("modified_by") for e in s.scalars(select(DomainEvent).order_by(DomainEvent.id))]
        assert kinds[-1] == "customer"


def test_form_errors_beside_fields_and_nothing_saved(browser, world, hours, factory):
    response = _book(browser, name="", email="not-an-email", phone="12")
    assert response.status_code == 422
    html = response.text
    assert "There is a problem" in html
    assert 'id="name-error">Enter your name' in html
    assert 'id="email-error">Enter an email address like name@example.com' in html
    assert 'id="phone-error">Enter a phone number' in html
    assert 'value="not-an-email"' in html  # what they typed is kept
    no_token = browser.post(f"{PAGE}/book", data={"start": TUESDAY_10_NY.isoformat(), "name": "A",
                                                  "email": "a@example.com"})
    assert no_token.status_code == 400
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Appointment)) == 0
        assert s.scalar(select(func.count()).select_from(Contact).where(Contact.email == "a@example.com")) == 0


def test_existing_contact_is_matched_by_email_and_a_taken_slot_is_friendly(browser, world, hours, factory):
    assert _book(browser, email="DANA@example.com", name="Dana Someone").status_code == 303
    with factory() as s:
        appt = s.scalar(select(Appointment))
        assert appt.contact_id == world.dana_id
        assert s.get(Contact, world.dana_id).last_name == "Contact"  # not overwritten by the visitor's typing
    # Both hosts: the second booking of 10:00 goes to the other host, the third finds it taken.
    assert _book(browser, email="two@example.com").status_code == 303
    taken = _book(browser, email="three@example.com")
    assert taken.status_code == 409 and "just taken" in taken.text and "pick another time" in taken.text
    assert "10:30 AM" in taken.text  # the slot list is right there


def test_outside_hours_or_past_is_refused_on_the_page(browser, world, hours):
    night = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
    assert _book(browser, start=night).status_code == 409
    assert _book(browser, start=datetime(2020, 1, 1, 15, tzinfo=UTC)).status_code == 409


def test_concurrent_requests_for_one_slot_book_it_once(app, world, hours, factory):
    """Real HTTP, real threads: 16 visitors post the same slot at once; exactly one host per slot."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            form = client.get(f"{PAGE}/book", params={"start": TUESDAY_10_NY.isoformat()})
            token = _token(form.text)

        def attempt(i: int) -> int:
            with httpx.Client(base_url=base, timeout=60) as c:
                return c.post(f"{PAGE}/book", data={
                    "start": TUESDAY_10_NY.isoformat(), "tz": "America/New_York", "form_token": token,
                    "name": f"Visitor {i}", "email": f"v{i}@example.com"}).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = list(pool.map(attempt, range(16)))
    finally:
        server.shutdown()
        thread.join()
    assert sorted(codes).count(303) == 2, codes  # two members, one appointment per slot each
    assert all(c in (303, 409) for c in codes), codes
    with factory() as s:
        rows = s.execute(select(Appointment.assigned_user_id, func.count()).where(Appointment.start_at == TUESDAY_10_NY)
                         .group_by(Appointment.assigned_user_id)).all()
        assert sorted(n for _, n in rows) == [1, 1]
