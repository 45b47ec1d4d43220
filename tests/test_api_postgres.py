"""The one API test that runs on both backends (SQLite and PostgreSQL, via conftest's ``db_url``):
booking through the API enrolls the contact, and after the worker ticks the outbox shows the
confirmation rendered with the contact's name and the sandbox meeting link."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import publish
from tests.test_api_fixtures import Api, app_fixture, confirmation_doc, spy_runtime_fixture  # noqa: F401  (fixtures)


def test_booking_through_api_sends_confirmation(app, world, factory, clock, runtime, spy_runtime):
    with factory() as s, s.begin():
        wf_id = publish(s, world, confirmation_doc(), clock.now()).id
    api = Api(app.test_client(), world.api_key)
    response = api.post("/appointments", {
        "calendar_id": world.calendar_id, "contact_id": world.dana_id,
        "start_time": (clock.now() + timedelta(days=3)).isoformat(),
    })
    assert response.status_code == 201, response.get_json()
    appt = response.get_json()
    assert spy_runtime.wakes == 1
    runtime.tick()

    enrollments = api.get(f"/enrollments?appointment_id={appt['id']}").get_json()["items"]
    assert [(e["workflow_id"], e["state"]) for e in enrollments] == [(wf_id, "waiting")]
    emails = api.get("/messages?channel=email").get_json()["items"]
    assert len(emails) == 1
    assert emails[0]["status"] == "sent"
    assert emails[0]["subject"] == "See you soon, Dana"
    link = api.get(f"/appointments/{appt['id']}").get_json()["meeting_location"]
    assert link and "sandbox.punctual.invalid" in link
    assert emails[0]["body"] == f"Hi Dana, join here: {link}"
