"""Issue #10's journey in a real browser: sign in, create a round-robin calendar with two members, set a
member's hours, open the booking page, book as a contact, see the appointment in the calendar view and on
the contact's page with the enrollment and the captured confirmation carrying the sandbox Zoom link, then
cancel through the cancellation link from that message. The confirmation workflow is the published recipe
(imported with the recipe domain function, as a location would). Screenshots: tests/screenshots/calendars-*.png,
at laptop and phone widths."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import select

from automations.documents import recipes, workflows
from automations.store.models import Appointment, BusyBlock, Calendar, Enrollment, Message
from tests.browser.conftest import shot, sign_in, sync_api

RECIPE = "appointment-confirmation-reminders"


def _publish_confirmation(factory, location_id: str, now) -> None:
    """The confirmation recipe, published, its email also carrying the contact's cancellation link."""
    with factory() as s, s.begin():
        wf = recipes.import_recipe(s, location_id, RECIPE, {}, now)
        doc = workflows.export(s, wf)
        email = next(step for step in doc["steps"] if step["id"] == "confirm-email")
        email["body"] += "\n\nCan't make it? Cancel: {{appointment.cancellation_link}}"
        workflows.update_draft(s, wf, doc, now=now)
        workflows.publish(s, wf, now=now)


def test_calendar_journey(browser_instance, live_server, factory, clock, runtime, two_worlds):
    expect = sync_api.expect
    one, _ = two_worlds
    _publish_confirmation(factory, one.location_id, clock.now())
    context = browser_instance.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/New_York")
    context.set_default_timeout(15_000)
    page = context.new_page()
    base = live_server
    sign_in(page, base)

    # Calendars in the nav → the list.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Calendars").click()
    expect(page.get_by_role("heading", name="Calendars", exact=True)).to_be_visible()
    shot(page, "calendars-1-list")

    # Create a round-robin calendar: a mistake first (a day with only a start), then fixed.
    page.get_by_role("link", name="Create calendar").click()
    page.get_by_label("Calendar name").fill("Discovery call")
    page.get_by_label("Round robin (rotates among free members)").check()
    page.get_by_label("Slot length (minutes)").fill("30")
    page.get_by_label("Buffer after (minutes)").fill("10")
    page.get_by_label("Appointment title").fill("{{contact.name}} – Discovery call")
    page.locator(f"#member-{one.alice_id}").check()
    page.locator(f"#m-{one.alice_id}-priority").fill("10")
    page.locator(f"#m-{one.alice_id}-zoom").check()  # Alice meets on Zoom (her own choice)
    page.locator(f"#member-{one.bob_id}").check()
    page.locator(f"#m-{one.bob_id}-static").check()
    page.locator(f"#m-{one.bob_id}-static-text").fill("https://meet.example.com/bob")
    page.get_by_label("Wednesday from").fill("09:00")
    page.get_by_role("button", name="Create calendar").click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(page.locator("#field-availability-wed .error-message")).to_contain_text("enter both a from and a to time")
    shot(page, "calendars-2-form-error")
    page.get_by_label("Wednesday from").fill("")
    page.get_by_role("button", name="Create calendar").click()
    expect(page.get_by_text("Calendar Discovery call created")).to_be_visible()
    shot(page, "calendars-3-edit")

    # Alice's own hours: Tuesday 09:00–17:00 New York, a day off on Wednesday.
    page.get_by_role("link", name="Hours and Google calendar for Alice Admin").click()
    expect(page.get_by_role("heading", name="Alice Admin on Discovery call")).to_be_visible()
    page.get_by_label("Tuesday from").fill("09:00")
    page.get_by_label("Tuesday to").fill("17:00")
    page.locator("#ov-0-date").fill("2026-11-04")
    page.locator("#ov-0-off").check()
    page.get_by_role("button", name="Save hours").click()
    expect(page.get_by_text("Hours for Alice Admin on Discovery call saved")).to_be_visible()
    expect(page.get_by_label("Tuesday to")).to_have_value("17:00")
    shot(page, "calendars-4-member-hours")

    # The booking page, as a contact (another browser context: no sign-in).
    with factory() as s:
        slug = s.scalar(select(Calendar.slug).where(Calendar.name == "Discovery call"))
    visitor = browser_instance.new_context(viewport={"width": 900, "height": 1000}, timezone_id="America/New_York")
    visitor.set_default_timeout(15_000)
    book = visitor.new_page()
    book.goto(f"{base}/book/test-clinic/{slug}")
    expect(book.get_by_role("heading", name="Tuesday, November 3")).to_be_visible()
    shot(book, "calendars-booking-page")
    # Tuesday 10:00 New York: both members free (Bob keeps the calendar's round-the-clock hours); Alice's
    # priority wins the round robin.
    book.locator("h2:has-text('Tuesday, November 3') + ul.slots").get_by_role("link", name="10:00 AM").click()
    expect(book.get_by_role("heading", name="Your details")).to_be_visible()
    book.get_by_label("Name").fill("Robin Visitor")
    book.get_by_label("Email").fill("robin@example.com")
    book.get_by_role("button", name="Book").click()
    expect(book.get_by_role("heading", name="You're booked")).to_be_visible()
    with factory() as s, s.begin():  # Bob's Google calendar has an event on Tuesday afternoon: blocked time
        s.add(BusyBlock(user_id=one.bob_id, source="google", external_id="dentist", title="Dentist",
                        start_at=datetime(2026, 11, 3, 18, 0, tzinfo=UTC), end_at=datetime(2026, 11, 3, 19, 0, tzinfo=UTC),
                        updated_at=clock.now()))
    for _ in range(3):  # the worker: the sandbox meeting, then the confirmation
        runtime.tick()
    with factory() as s:
        appt = s.scalar(select(Appointment).where(Appointment.title.like("%Discovery call")))
        assert appt.assigned_user_id == one.alice_id
        assert s.scalar(select(Enrollment).where(Enrollment.appointment_id == appt.id)) is not None
        email = s.scalar(select(Message).where(Message.channel == "email", Message.appointment_id == appt.id,
                                               Message.status != "queued"))
    assert email is not None and "sandbox.punctual.invalid" in email.body

    # Staff see it: the 7-day view, then the contact's page with the enrollment and the captured messages.
    page.goto(f"{base}/calendars")
    page.get_by_role("link", name="Next 7 days of Discovery call").click()
    expect(page.get_by_role("link", name="Robin Visitor – Discovery call")).to_be_visible()
    expect(page.get_by_text("Dentist")).to_be_visible()
    shot(page, "calendars-5-week")
    page.get_by_role("link", name="Robin Visitor – Discovery call").click()
    expect(page.get_by_role("heading", name="Robin Visitor")).to_be_visible()
    expect(page.get_by_role("cell", name="Appointment confirmation + reminders")).to_be_visible()
    shot(page, "calendars-6-contact")
    page.get_by_role("row").filter(has_text="Confirmed:").get_by_role("link").first.click()  # the captured email
    expect(page.get_by_text(re.compile(r"sandbox\.punctual\.invalid")).first).to_be_visible()
    shot(page, "calendars-7-confirmation")

    # Cancel through the link in the captured email.
    cancel_url = re.search(r"Cancel: (\S+)", email.body).group(1)
    book.goto(re.sub(r"^https?://[^/]+", base, cancel_url))
    expect(book.get_by_role("heading", name="Cancel this appointment?")).to_be_visible()
    book.get_by_role("button", name="Yes, cancel it").click()
    expect(book.get_by_role("heading", name="Your appointment is cancelled")).to_be_visible()
    with factory() as s:
        assert s.get(Appointment, appt.id).status == "cancelled"
    page.goto(f"{base}/calendars")
    page.get_by_role("link", name="Next 7 days of Discovery call").click()
    expect(page.get_by_role("link", name="Robin Visitor – Discovery call")).to_have_count(0)

    # My profile → Integrations: Zoom and Google Calendar side by side.
    page.goto(f"{base}/profile")
    expect(page.get_by_role("heading", name="Google Calendar")).to_be_visible()
    shot(page, "calendars-profile-integrations")

    # Phone width: the list, the form and the week stay readable.
    phone = browser_instance.new_context(viewport={"width": 390, "height": 844}, timezone_id="America/New_York")
    phone_page = phone.new_page()
    sign_in(phone_page, base)
    with factory() as s:
        cal_id = s.scalar(select(Calendar.id).where(Calendar.name == "Discovery call"))
    for url, name in ((f"{base}/calendars", "calendars-8-phone-list"), (f"{base}/calendars/{cal_id}", "calendars-9-phone-form"),
                      (f"{base}/calendars/{cal_id}/members/{one.alice_id}", "calendars-10-phone-hours")):
        phone_page.goto(url)
        shot(phone_page, name)
    for ctx in (phone, visitor, context):
        ctx.close()
