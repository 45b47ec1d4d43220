"""The builder's tools as pages: live validation with every problem (validate_document), the simulator tab,
a message step's preview (nothing written) and test send (through the capture provider), the
``skip_if_after`` guard in the step form."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from automations.documents import workflows
from automations.store.models import Location, Message
from tests.factories import book, doc
from tests.test_pages_fixtures import (  # noqa: F401
    app_fixture,
    browser_fixture,
    signed_in_fixture,
    sqlite_only,
    two_worlds_fixture,
)

DOC = doc({"id": "confirm", "type": "send_sms", "body": "Booked: {{appointment.meeting_location}}"},
          {"id": "wait", "type": "wait_appointment_time", "direction": "before", "days": 1},
          {"id": "remind", "type": "send_sms", "body": "Tomorrow, {{contact.first_name}}: {{appointment.meeting_location}}",
           "skip_if_after": {"direction": "before", "minutes": 45}})


def _setup(factory, clock, world):
    with factory() as s, s.begin():
        wf = workflows.create(s, s.get(Location, world.location_id), DOC, now=clock.now())
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=2), calendar_id=world.static_calendar_id)
        return wf.id, appt.id


def _messages(factory) -> int:
    with factory() as s:
        return s.scalar(select(func.count()).select_from(Message))


def test_simulator_tab_shows_the_skip_and_its_reason(signed_in, factory, clock, two_worlds):
    one, two = two_worlds
    wid, _ = _setup(factory, clock, one)
    page = signed_in.get(f"/workflows/{wid}/simulate").get_data(as_text=True)
    assert 'name="start_time"' in page and "Contact's time zone" in page
    booked = clock.now().strftime("%Y-%m-%dT%H:%M")
    r = signed_in.get(f"/workflows/{wid}/simulate", query_string={
        "run": 1, "calendar_id": one.calendar_id, "contact_timezone": "UTC",
        "start_time": (clock.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
        "booked_at": booked})
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "Timeline" in page and "past time" in page and "skipped" in page
    assert _messages(factory) == 0  # rolled back
    r = signed_in.get(f"/workflows/{wid}/simulate", query_string={
        "run": 1, "calendar_id": two.calendar_id, "contact_timezone": "UTC", "start_time": "nope",
        "booked_at": booked})
    assert r.status_code == 422 and 'id="field-start_time"' in r.get_data(as_text=True)


def test_preview_and_test_send(signed_in, factory, clock, two_worlds, runtime):
    one, two = two_worlds
    wid, appt_id = _setup(factory, clock, one)
    builder = signed_in.get(f"/workflows/{wid}").get_data(as_text=True)
    assert f"/workflows/{wid}/steps/remind/preview" in builder
    assert "Skipped if its moment has passed: 45 minutes before the appointment" in builder
    r = signed_in.get(f"/workflows/{wid}/steps/remind/preview",
                      query_string={"contact_id": one.dana_id, "appointment_id": appt_id})
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    assert "Tomorrow, Dana: https://meet.example.com/static-room" in page and "America/New_York" in page
    assert _messages(factory) == 0
    r = signed_in.post(f"/workflows/{wid}/steps/remind/test-send", {"contact_id": one.dana_id,
                                                                    "appointment_id": appt_id})
    assert r.status_code == 200 and "See it in the outbox" in r.get_data(as_text=True)
    runtime.tick()
    with factory() as s:
        (m,) = s.scalars(select(Message)).all()
        assert m.template["test"] and m.status == "sent" and m.provider == "capture"
        assert m.body == "Tomorrow, Dana: https://meet.example.com/static-room"
    # Another location's contact names nothing here; a non-message step has no preview.
    r = signed_in.get(f"/workflows/{wid}/steps/remind/preview", query_string={"contact_id": two.dana_id})
    assert r.status_code == 422 and "contact_id" in r.get_data(as_text=True)
    assert signed_in.get(f"/workflows/{wid}/steps/wait/preview").status_code == 404


def test_live_validation_shows_every_problem_and_the_guard_is_labelled(signed_in, factory, clock, two_worlds):
    one, _ = two_worlds
    wid, _ = _setup(factory, clock, one)
    form = signed_in.get(f"/workflows/{wid}/steps/remind").get_data(as_text=True)
    assert "Skip this step if its moment has passed" in form and "before/after the appointment" in form
    r = signed_in.post(f"/workflows/{wid}/steps/remind/validate", {"_type": "send_sms",
                                                                  "body": "Hi {{ contact.nope }} {{ contact.first_name "})
    data = r.get_json()
    assert {p["path"] for p in data["problems"]} == {"steps[2].body"} and len(data["fields"]["body"]) == 2
    assert all(p["href"] == "#field-body" for p in data["problems"])
