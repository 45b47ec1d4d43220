"""The API tests that run on both backends (SQLite and PostgreSQL, via conftest's ``db_url``): booking
through the API enrolls the contact, and after the worker ticks the outbox shows the confirmation
rendered with the contact's name and the sandbox meeting link; bookings racing for one slot take it once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
from sqlalchemy import func, select
from werkzeug.serving import make_server

from automations.store.models import Appointment, Contact
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


def test_concurrent_api_bookings_of_one_slot_book_each_host_once(app, world, factory, clock):
    """Real HTTP, real threads, both backends: 12 clients post the same slot of the two-host round-robin
    calendar (two bookings per host per slot) at once, each with a new inline contact. The API reads the
    calendar before it takes the writer (SQLite) or locks rows (PostgreSQL); whether the slot is free must
    still be decided under it: exactly two bookings per host, every other a 409, and a refused booking's
    contact is not kept."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    start = (clock.now() + timedelta(days=3)).isoformat()
    with factory() as s:
        contacts_before = s.scalar(select(func.count()).select_from(Contact))

    def attempt(i: int) -> int:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}", timeout=60) as client:
            return client.post("/api/v1/appointments", headers={"Authorization": f"Bearer {world.api_key}"}, json={
                "calendar_id": world.calendar_id, "start_time": start,
                "contact": {"first_name": f"Racer{i}", "email": f"racer{i}@example.com"}}).status_code

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            codes = list(pool.map(attempt, range(12)))
    finally:
        server.shutdown()
        thread.join()
    assert sorted(codes) == [201] * 4 + [409] * 8, codes
    with factory() as s:
        hosts = s.scalars(select(Appointment.assigned_user_id).where(Appointment.calendar_id == world.calendar_id)).all()
        assert sorted(hosts) == sorted([world.alice_id, world.bob_id] * 2)
        assert s.scalar(select(func.count()).select_from(Contact)) == contacts_before + 4
