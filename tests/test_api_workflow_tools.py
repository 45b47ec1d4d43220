"""The builder's tools through the API: validate (every problem at once, as data), simulate a booking,
preview a message step without writing anything, and send a test through the real channel."""

from __future__ import annotations

from datetime import timedelta

from automations.store.models import (
    Appointment,
    AuditEvent,
    Contact,
    DomainEvent,
    Enrollment,
    EnrollmentLog,
    Message,
    Workflow,
)
from tests.factories import book, doc
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    counts,
    error_fields,
    other_api_fixture,
    other_world_fixture,
    spy_runtime_fixture,
)

EVERYTHING = (Message, Enrollment, EnrollmentLog, Appointment, Contact, Workflow, DomainEvent, AuditEvent)


def _draft(api, document=None) -> str:
    created = api.post("/workflows", document or confirmation_doc())
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"]


def test_validate_reports_every_problem_with_its_path(api, factory):
    bad = doc({"id": "a", "type": "send_sms", "body": "Hi {{ contact.first_nam }}"},
              {"id": "b", "type": "send_email", "subject": "{{ contact.first_name ", "body": "x"})
    bad["triggers"] = []
    before = counts(factory, Workflow)
    r = api.post("/workflows/validate", bad)
    assert r.status_code == 200
    body = r.get_json()
    assert body["valid"] is False
    paths = {p["path"] for p in body["problems"]}
    assert {"triggers", "steps[0].body", "steps[1].subject"} <= paths, body
    assert counts(factory, Workflow) == before  # nothing saved
    good = api.post("/workflows/validate", confirmation_doc()).get_json()
    assert good == {"valid": True, "problems": []}


def test_validate_a_stored_draft_or_a_given_document(api, other_api):
    wid = _draft(api, doc({"id": "a", "type": "send_sms", "body": "{{ contact.nope }}"}))
    stored = api.post(f"/workflows/{wid}/validate").get_json()
    assert not stored["valid"] and stored["problems"][0]["path"] == "steps[0].body"
    assert "unknown merge fields: contact.nope" in stored["problems"][0]["message"]
    given = api.post(f"/workflows/{wid}/validate", confirmation_doc()).get_json()
    assert given["valid"] is True
    assert other_api.post(f"/workflows/{wid}/validate").status_code == 404


def test_simulate_shows_a_one_day_wait_skipped_for_a_booking_two_hours_ahead(api, world, clock):
    document = doc({"id": "confirm", "type": "send_sms", "body": "Booked"},
                   {"id": "wait", "type": "wait_appointment_time", "direction": "before", "days": 1},
                   {"id": "remind", "type": "send_sms", "body": "Tomorrow!"})
    wid = _draft(api, document)
    body = {"calendar_id": world.calendar_id, "start_time": (clock.now() + timedelta(hours=2)).isoformat(),
            "contact_timezone": "America/Los_Angeles", "booked_at": clock.now().isoformat()}
    r = api.post(f"/workflows/{wid}/simulate", body)
    assert r.status_code == 200, r.get_json()
    timeline = r.get_json()
    assert timeline["trigger_matched"] is True
    by_step = {e["step_id"]: e for e in timeline["entries"]}
    assert by_step["confirm"]["outcome"] == "queued" and by_step["confirm"]["at"] == clock.now().isoformat()
    assert by_step["confirm"]["at_local"].endswith("-08:00")
    wait = by_step["wait"]
    assert wait["outcome"] == "skipped" and wait["skipped"] == "past_time", wait
    assert by_step["remind"]["outcome"] == "queued"


def test_simulate_names_bad_fields(api, other_world, clock):
    wid = _draft(api)
    body = {"calendar_id": other_world.calendar_id, "start_time": clock.now().isoformat(),
            "contact_timezone": "Mars/Base", "booked_at": clock.now().isoformat()}
    r = api.post(f"/workflows/{wid}/simulate", body)
    assert r.status_code == 422 and "contact_timezone" in error_fields(r)
    body["contact_timezone"] = "UTC"
    r = api.post(f"/workflows/{wid}/simulate", body)
    assert r.status_code == 422 and "calendar_id" in error_fields(r)


def _booked(factory, world, clock):
    with factory() as s, s.begin():
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=2),
                    calendar_id=world.static_calendar_id)
        return appt.id


def test_preview_renders_for_the_contact_and_writes_nothing(api, factory, world, clock):
    wid = _draft(api)
    appointment_id = _booked(factory, world, clock)
    before = counts(factory, *EVERYTHING)
    r = api.post(f"/workflows/{wid}/preview", {"step_id": "remind", "contact_id": world.dana_id,
                                               "appointment_id": appointment_id})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["step_type"] == "send_sms" and len(body["messages"]) == 1
    sms = body["messages"][0]
    assert sms["channel"] == "sms" and sms["to"] == "+12125550123" and sms["timezone"] == "America/New_York"
    assert sms["body"] == "Tomorrow: https://meet.example.com/static-room"
    assert sms["meeting_location"] == "https://meet.example.com/static-room"
    email = api.post(f"/workflows/{wid}/preview", {"step_id": "confirm", "contact_id": world.eli_id,
                                                   "appointment_id": appointment_id}).get_json()["messages"][0]
    assert email["subject"] == "See you soon, Eli" and email["timezone"] == "America/Los_Angeles"
    assert counts(factory, *EVERYTHING) == before  # no message, no log line, no audit line


def test_preview_and_test_send_name_bad_fields(api, factory, world, other_world, clock):
    wid = _draft(api)
    cases = [({"step_id": "nope", "contact_id": world.dana_id}, "step_id"),
             ({"step_id": "remind", "contact_id": other_world.dana_id}, "contact_id"),
             ({"step_id": "remind", "contact_id": world.dana_id, "appointment_id": "0" * 32}, "appointment_id"),
             # Eli has no phone: the SMS step sends nothing, with the step's own reason.
             ({"step_id": "remind", "contact_id": world.eli_id}, "step_id"),
             ({"step_id": "wait", "contact_id": world.dana_id}, "step_id")]
    before = counts(factory, Message)
    for body, field in cases:
        for action in ("preview", "test-send"):
            r = api.post(f"/workflows/{wid}/{action}", body)
            assert r.status_code == 422 and field in error_fields(r), (action, body, r.get_json())
    assert "no phone" in error_fields(api.post(f"/workflows/{wid}/preview", cases[3][0]))["step_id"][0]
    assert counts(factory, Message) == before


def test_test_send_goes_through_the_capture_provider(api, factory, world, clock, runtime, spy_runtime):
    wid = _draft(api)
    appointment_id = _booked(factory, world, clock)
    wakes = spy_runtime.wakes
    r = api.post(f"/workflows/{wid}/test-send", {"step_id": "remind", "contact_id": world.dana_id,
                                                 "appointment_id": appointment_id})
    assert r.status_code == 201, r.get_json()
    (written,) = r.get_json()["messages"]
    assert written["test"] is True and written["status"] == "pending" and written["enrollment_id"] is None
    assert spy_runtime.wakes == wakes + 1
    runtime.tick()
    sent = api.get(f"/messages/{written['id']}").get_json()
    assert sent["status"] == "sent" and sent["provider"] == "capture" and sent["test"] is True
    assert sent["body"] == "Tomorrow: https://meet.example.com/static-room"
    with factory() as s:
        assert s.query(Enrollment).count() == 0  # a test belongs to no run
