"""A marketer's day in a real browser: sign in, import the confirmation recipe with a mapping, build a
workflow from scratch (trigger with filters, appointment-time wait with skip_outbound, an SMS with the
meeting link through the picker, an internal notification), meet a validation error and fix it, publish,
book, read the enrollment log and the captured SMS with its sandbox Zoom link; simulate a late booking and see
the skipped wait with its reason, preview the SMS with the sandbox link and send a test that lands in the
outbox — and a second location's user sees none of it. Screenshots of every main page are saved to tests/screenshots/."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from playwright.sync_api import expect
from sqlalchemy import select

from automations.store.models import Enrollment, Workflow
from tests.browser.conftest import OTHER_EMAIL, enhanced, shot, sign_in
from tests.factories import book


def test_marketer_journey(page, live_server, factory, clock, runtime, two_worlds, browser_instance):
    base = live_server
    one, _ = two_worlds
    page.goto(f"{base}/login")
    shot(page, "01-sign-in")
    sign_in(page, base)
    shot(page, "02-dashboard-empty")

    # Import the confirmation recipe with a mapping.
    page.get_by_role("link", name="Recipes").click()
    expect(page.get_by_role("heading", name="Recipes")).to_be_visible()
    shot(page, "03-recipes")
    page.get_by_role("link", name=re.compile("Appointment confirmation")).click()
    page.get_by_label("Workflow name").fill("Consultation confirmations")
    page.get_by_label("Consultation").check()
    page.get_by_label("Sender email").fill("hello@clinic.example")
    shot(page, "04-recipe-import")
    page.get_by_role("button", name="Import recipe").click()
    expect(page.get_by_role("heading", name=re.compile("Consultation confirmations"))).to_be_visible()
    expect(page.get_by_text("Imported")).to_be_visible()

    # Build a workflow from scratch.
    page.get_by_role("link", name="Workflows").first.click()
    shot(page, "05-workflows")
    page.get_by_label("New workflow name").fill("Zoom reminders")
    page.get_by_role("button", name="Create blank workflow").click()
    expect(page.get_by_role("heading", name=re.compile("Zoom reminders"))).to_be_visible()
    enhanced(page)
    page.get_by_role("link", name="Add New Workflow Trigger").click()
    expect(page.get_by_role("dialog")).to_be_visible()  # the trigger form opens in a dialog
    page.get_by_label("Workflow trigger name").fill("Appointment")
    page.get_by_label("Event type").select_option("normal")
    page.get_by_label("confirmed").check()
    page.get_by_label("Consultation").check()
    shot(page, "06-trigger")
    page.get_by_role("button", name="Save Trigger").click()
    expect(page.get_by_text("Trigger saved.")).to_be_visible()

    # An SMS with the meeting link, inserted through the picker; first with a mistake.
    enhanced(page)
    page.get_by_role("link", name="Add an action at the end").click()
    expect(page.get_by_role("dialog").get_by_role("heading", name="Actions", exact=True)).to_be_visible()
    shot(page, "07-action-picker", full_page=False)
    page.get_by_role("link", name="Send SMS").click()
    body = page.get_by_label("Message")
    body.fill("Hi {{ contact.first_name | shout }}, your link: ")
    page.get_by_text("Insert merge field", exact=True).click()
    page.get_by_label("Search merge fields").fill("meeting")
    page.get_by_role("button", name="appointment.meeting_location").click()
    expect(body).to_have_value(re.compile(r"your link: \{\{ appointment\.meeting_location \}\}"))
    expect(page.get_by_text(re.compile(r"SMS segment"))).to_be_visible()
    page.get_by_role("button", name="Save Action").click()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("steps[0].body")
    expect(summary).to_contain_text("the filter 'shout' is not allowed")
    expect(page.locator(".error-message")).to_contain_text("shout")
    shot(page, "08-sms-validation-error")
    body.fill(body.input_value().replace(" | shout", ""))
    page.get_by_role("button", name="Save Action").click()
    expect(page.get_by_text("Send SMS added.")).to_be_visible()

    # Internal notification.
    page.get_by_role("link", name="Add an action at the end").click()
    page.get_by_role("link", name="Internal Notification").click()
    page.get_by_label("Type of notification").select_option("in_app")
    page.get_by_label("Message").fill("{{ contact.name }} booked {{ appointment.start_time }}")
    page.get_by_role("button", name="Save Action").click()
    expect(page.get_by_text("Internal Notification added.")).to_be_visible()

    # The event/appointment-time wait, 1 day before, skipping outbound if that time has passed.
    page.get_by_role("link", name="Add an action at the end").click()
    page.get_by_role("link", name="Wait: event / appointment time").click()
    page.get_by_label("Before", exact=True).check()
    page.get_by_label("Hours").fill("24")
    page.get_by_label(re.compile("Skip all outbound communication")).check()
    shot(page, "09-wait-appointment-time")
    page.get_by_role("button", name="Save Action").click()
    expect(page.get_by_text("Wait: event / appointment time added.")).to_be_visible()
    expect(page.get_by_text("Wait until 1 day before the appointment")).to_be_visible()  # 24 hours rolled over
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published as version 1")).to_be_visible()
    shot(page, "10-builder")
    page.set_viewport_size({"width": 390, "height": 844})
    shot(page, "11-builder-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    with factory() as s:
        wf = s.scalar(select(Workflow).where(Workflow.name == "Zoom reminders", Workflow.location_id == one.location_id))
        wid = wf.id
        assert wf.status == "published" and [x["type"] for x in wf.draft["steps"]] == [
            "send_sms", "internal_notification", "wait_appointment_time"]

    # Book an appointment (the domain function the API calls), let the worker run.
    with factory() as s, s.begin():
        appointment_id = book(s, one, clock.now(), start=clock.now() + timedelta(days=3)).id
    runtime.tick()

    page.goto(f"{base}/workflows/{wid}/enrollments")
    expect(page.get_by_role("cell", name="Dana Contact", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"Times in America/New_York"))).to_be_visible()
    shot(page, "12-enrollment-history")
    page.get_by_role("link", name=re.compile("Log for Dana")).click()
    expect(page.get_by_role("heading", name="Step-by-step log")).to_be_visible()
    expect(page.get_by_role("cell", name=re.compile("SMS queued"))).to_be_visible()
    shot(page, "13-enrollment-log")

    page.get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", name="Outbox")).to_be_visible()
    sms_row = page.get_by_role("row").filter(has_text="sms").filter(has_text="sandbox.punctual.invalid").first
    expect(sms_row).to_be_visible()
    shot(page, "14-outbox")
    sms_row.get_by_role("link").first.click()
    expect(page.locator("pre.body")).to_contain_text("https://sandbox.punctual.invalid/zoom/j/")
    shot(page, "15-message")

    # The simulator: a booking made 2 hours ahead skips the 1-day-before wait, and says why.
    page.goto(f"{base}/workflows/{wid}")
    page.get_by_role("link", name="Simulate").click()
    la = ZoneInfo("America/Los_Angeles")
    page.get_by_label("Contact's time zone").fill("America/Los_Angeles")
    page.get_by_label("Appointment starts").fill((clock.now() + timedelta(hours=2)).astimezone(la).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Booked at").fill(clock.now().astimezone(la).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Simulate").click()
    wait_row = page.locator("#timeline tr").filter(has_text="Wait: event / appointment time")
    expect(wait_row).to_contain_text("skipped")
    expect(wait_row).to_contain_text("past-time policy")
    expect(page.locator("#timeline tr").filter(has_text="Send SMS").first).to_contain_text("queued")
    shot(page, "builder-simulate")

    # Preview the SMS for Dana's appointment: the sandbox meeting link, nothing sent.
    page.get_by_role("link", name="Builder").click()
    page.get_by_role("link", name=re.compile(r"^Preview \W Send test")).first.click()
    page.get_by_label("Contact", exact=True).select_option(one.dana_id)
    page.get_by_label("Appointment", exact=True).select_option(appointment_id)
    page.get_by_role("button", name="Preview").click()
    rendered = page.locator(".rendered pre.message-body")
    expect(rendered).to_contain_text("https://sandbox.punctual.invalid/zoom/j/")
    expect(page.locator(".rendered")).to_contain_text("America/New_York")
    shot(page, "builder-preview")
    # Send a test: it is written to the outbox, the worker sends it through the capture channel.
    page.get_by_role("button", name="Send test to this contact").click()
    expect(page.get_by_text(re.compile("written to the outbox"))).to_be_visible()
    runtime.tick()
    page.get_by_role("link", name="See it in the outbox").click()
    expect(page.locator("pre.body")).to_contain_text("https://sandbox.punctual.invalid/zoom/j/")
    page.get_by_role("link", name="Outbox", exact=True).click()
    expect(page.get_by_role("row").filter(has_text="test").filter(has_text="sms").first).to_be_visible()

    page.get_by_role("link", name=re.compile("Notifications")).click()
    expect(page.get_by_text("Dana Contact booked")).to_be_visible()
    shot(page, "16-notifications")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator(".chart svg")).to_be_visible()
    shot(page, "17-dashboard")
    page.goto(f"{base}/contacts/{one.dana_id}")
    shot(page, "18-contact")
    for url, name in (("/settings", "19-settings-location"), ("/settings/users", "20-settings-users"),
                      ("/settings/api-keys", "21-settings-api-keys"), ("/settings/calendars", "22-settings-calendars"),
                      ("/profile", "23-profile-zoom"), (f"/workflows/{wid}/settings", "24-workflow-settings"),
                      (f"/workflows/{wid}/versions", "25-versions"), ("/workflows/import", "26-import")):
        page.goto(base + url)
        expect(page.get_by_role("heading").first).to_be_visible()
        shot(page, name)

    # A second location's user cannot see any of it.
    other = browser_instance.new_context()
    other_page = other.new_page()
    sign_in(other_page, base, OTHER_EMAIL)
    with factory() as s:
        enrollment_id = s.scalar(select(Enrollment.id).where(Enrollment.workflow_id == wid))
    for url in (f"/workflows/{wid}", f"/workflows/{wid}/enrollments", f"/enrollments/{enrollment_id}",
                f"/contacts/{one.dana_id}"):
        response = other_page.goto(base + url)
        assert response.status == 404, url
        expect(other_page.get_by_role("heading", name="Page not found")).to_be_visible()
    shot(other_page, "27-other-location-404")
    other_page.goto(f"{base}/workflows")
    expect(other_page.get_by_text("Zoom reminders")).to_have_count(0)
    other.close()
