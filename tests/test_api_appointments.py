"""Appointments through the API: booking enrolls the contact and (after the worker ticks) the
confirmation shows up in the outbox; cancelling exits enrollments and withdraws pending messages;
PATCH reschedules, changes status and details in one transaction."""

from __future__ import annotations

from datetime import timedelta

from automations.store.models import Appointment, Contact, DomainEvent
from tests.factories import publish
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    count,
    counts,
    error_fields,
    spy_runtime_fixture,
    sqlite_only,
)


def _iso(moment):
    return moment.isoformat()


def _publish(factory, world, clock, doc=None):
    with factory() as s, s.begin():
        return publish(s, world, doc or confirmation_doc(), clock.now()).id


def _book(api, world, clock, days=3, **extra):
    body = {"calendar_id": world.calendar_id, "contact_id": world.dana_id,
            "start_time": _iso(clock.now() + timedelta(days=days)), **extra}
    response = api.post("/appointments", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_booking_returns_appointment_with_pending_meeting(api, world, clock, spy_runtime):
    start = clock.now() + timedelta(days=3)
    appt = _book(api, world, clock, title="Check-up", notes="bring forms")
    assert appt["title"] == "Check-up" and appt["notes"] == "bring forms"
    assert appt["status"] == "confirmed"
    assert appt["start_time"] == start.isoformat()
    assert appt["end_time"] == (start + timedelta(minutes=30)).isoformat()  # the calendar's slot length
    assert appt["assigned_user_id"] in (world.alice_id, world.bob_id)
    # Zoom (sandbox) meeting not created yet: the link is not known.
    assert appt["meeting"]["state"] == "pending"
    assert appt["meeting_location"] is None
    assert spy_runtime.wakes == 1
    assert api.get(f"/appointments/{appt['id']}").get_json() == appt


def test_booking_enrolls_and_confirmation_reaches_outbox(api, world, clock, factory, runtime):
    wf_id = _publish(factory, world, clock)
    appt = _book(api, world, clock)
    # Nothing runs inline in the request: the worker does it.
    assert api.get("/messages").get_json()["items"] == []
    runtime.tick()

    enrollments = api.get(f"/enrollments?appointment_id={appt['id']}").get_json()["items"]
    assert [(e["workflow_id"], e["state"], e["version"]) for e in enrollments] == [(wf_id, "waiting", 1)]
    emails = api.get(f"/messages?appointment_id={appt['id']}&channel=email").get_json()["items"]
    assert len(emails) == 1
    email = emails[0]
    assert email["status"] == "sent" and email["provider"] == "capture"
    assert email["to"] == "dana@example.com"
    assert email["subject"] == "See you soon, Dana"
    assert "Hi Dana" in email["body"] and "sandbox.punctual.invalid" in email["body"]
    assert email["sent_at"] == clock.now().isoformat() and email["attempts"] == 1
    assert api.get(f"/messages/{email['id']}").get_json() == email

    # The appointment now shows the ready link, the same one the email carried.
    fresh = api.get(f"/appointments/{appt['id']}").get_json()
    assert fresh["meeting"]["state"] == "ready"
    assert fresh["meeting_location"] and fresh["meeting_location"] in email["body"]


def test_booking_with_inline_contact_creates_it(api, world, clock, factory, runtime):
    _publish(factory, world, clock)
    before = count(factory, Contact)
    appt = _book(api, world, clock, contact_id=None,
                 contact={"first_name": "Fay", "email": "fay@example.com", "phone": "(212) 555-0199"})
    assert count(factory, Contact) == before + 1
    contact = api.get(f"/contacts/{appt['contact_id']}").get_json()
    assert (contact["first_name"], contact["phone"]) == ("Fay", "+12125550199")
    runtime.tick()
    email = api.get(f"/messages?contact_id={contact['id']}&channel=email").get_json()["items"][0]
    assert email["subject"] == "See you soon, Fay"


def test_inline_contact_errors_are_prefixed_and_nothing_is_saved(api, world, clock, factory):
    before = counts(factory, Contact, Appointment, DomainEvent)
    body = {"calendar_id": world.calendar_id, "start_time": _iso(clock.now() + timedelta(days=1)),
            "contact": {"first_name": "Gus", "phone": "12"}}
    response = api.post("/appointments", body)
    assert response.status_code == 422
    assert "contact.phone" in error_fields(response)
    # A valid contact but a booking that fails later (bad host) rolls the contact back too.
    body["contact"] = {"first_name": "Gus", "email": "gus@example.com"}
    body["assigned_user_id"] = "nobody"
    response = api.post("/appointments", body)
    assert response.status_code == 422 and "assigned_user_id" in error_fields(response)
    assert counts(factory, Contact, Appointment, DomainEvent) == before


def test_contact_id_or_contact_is_required_but_not_both(api, world, clock):
    start = _iso(clock.now() + timedelta(days=1))
    neither = api.post("/appointments", {"calendar_id": world.calendar_id, "start_time": start})
    assert neither.status_code == 422 and "contact_id" in error_fields(neither)
    both = api.post("/appointments", {"calendar_id": world.calendar_id, "start_time": start,
                                      "contact_id": world.dana_id, "contact": {"first_name": "X"}})
    assert both.status_code == 422 and "contact" in error_fields(both)


def test_full_slot_is_409_and_not_saved(api, world, clock, factory):
    start = clock.now() + timedelta(days=2)
    for _ in range(2):  # two per slot, per host: the round robin alternates hosts
        _book(api, world, clock, days=2)
    _book(api, world, clock, days=2)
    _book(api, world, clock, days=2)
    before = count(factory, Appointment)
    response = api.post("/appointments", {"calendar_id": world.calendar_id, "contact_id": world.eli_id,
                                          "start_time": _iso(start)})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert "start_time" in error_fields(response)
    assert count(factory, Appointment) == before


def test_cancel_via_patch_exits_enrollment_and_withdraws_pending_messages(api, world, clock, factory, runtime,
                                                                          spy_runtime):
    _publish(factory, world, clock)
    appt = _book(api, world, clock)
    # Handle the booking event only: the confirmation is queued but not yet delivered.
    runtime.run_events(clock.now())
    pending = api.get(f"/messages?appointment_id={appt['id']}&status=pending").get_json()["items"]
    assert {m["channel"] for m in pending} == {"email", "in_app"}

    wakes = spy_runtime.wakes
    response = api.patch(f"/appointments/{appt['id']}", {"status": "cancelled"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert response.get_json()["meeting"]["state"] == "none"
    assert spy_runtime.wakes == wakes + 1
    runtime.tick()

    enrollment = api.get(f"/enrollments?appointment_id={appt['id']}").get_json()["items"][0]
    assert enrollment["state"] == "exited"
    assert enrollment["exit_reason"].startswith("appointment cancelled")
    detail = api.get(f"/enrollments/{enrollment['id']}").get_json()
    assert [line["outcome"] for line in detail["log"]][-1] == "exited"
    assert "withdrawn" in detail["log"][-1]["reason"]
    messages = api.get(f"/messages?appointment_id={appt['id']}").get_json()["items"]
    assert {m["status"] for m in messages} == {"cancelled"}
    assert all(m["status_reason"].startswith("withdrawn") and m["sent_at"] is None for m in messages)
    assert api.get("/messages?status=sent").get_json()["items"] == []


def test_cancel_endpoint_is_idempotent(api, world, clock, factory, runtime, spy_runtime):
    _publish(factory, world, clock)
    appt = _book(api, world, clock)
    runtime.tick()
    first = api.post(f"/appointments/{appt['id']}/cancel")
    assert first.status_code == 200 and first.get_json()["status"] == "cancelled"
    wakes = spy_runtime.wakes
    again = api.post(f"/appointments/{appt['id']}/cancel")
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled"
    assert spy_runtime.wakes == wakes  # nothing changed, nothing to wake for
    runtime.tick()
    states = [e["state"] for e in api.get(f"/enrollments?appointment_id={appt['id']}").get_json()["items"]]
    assert states == ["exited"]
    with factory() as s:
        kinds = [e.kind for e in s.query(DomainEvent).filter_by(appointment_id=appt["id"]).order_by(DomainEvent.id)]
    assert kinds == ["appointment.booked", "appointment.status_changed"]


def test_reschedule_via_patch_restarts_enrollment(api, world, clock, factory, runtime):
    _publish(factory, world, clock)
    appt = _book(api, world, clock, days=3)
    runtime.tick()
    old_link = api.get(f"/appointments/{appt['id']}").get_json()["meeting_location"]
    clock.advance(minutes=10)
    new_start = clock.now() + timedelta(days=5)
    response = api.patch(f"/appointments/{appt['id']}", {"start_time": _iso(new_start)})
    assert response.status_code == 200
    moved = response.get_json()
    assert moved["start_time"] == new_start.isoformat()
    assert moved["end_time"] == (new_start + timedelta(minutes=30)).isoformat()  # duration kept
    assert moved["rescheduled"] is True
    assert moved["meeting"]["state"] == "pending"  # a new slot gets a new meeting
    runtime.tick()

    enrollments = api.get(f"/enrollments?appointment_id={appt['id']}").get_json()["items"]
    by_state = {e["state"]: e for e in enrollments}
    assert set(by_state) == {"exited", "waiting"}
    assert by_state["exited"]["exit_reason"].startswith("appointment rescheduled")
    assert by_state["waiting"]["rescheduled"] is True
    assert by_state["waiting"]["wake_at"] == (new_start - timedelta(days=1)).isoformat()
    fresh = api.get(f"/appointments/{appt['id']}").get_json()
    assert fresh["meeting"]["state"] == "ready" and fresh["meeting_location"] != old_link
    emails = api.get(f"/messages?appointment_id={appt['id']}&channel=email").get_json()["items"]
    assert len(emails) == 2 and fresh["meeting_location"] in emails[0]["body"]  # newest first


def test_patch_details_and_time_together(api, world, clock, factory):
    appt = _book(api, world, clock, days=3)
    other_host = world.bob_id if appt["assigned_user_id"] == world.alice_id else world.alice_id
    end = clock.now() + timedelta(days=3, hours=1)
    response = api.patch(f"/appointments/{appt['id']}", {
        "title": "Longer consult", "notes": "updated", "assigned_user_id": other_host, "end_time": _iso(end),
        "status": "showed",
    })
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["title"], body["notes"], body["assigned_user_id"], body["status"]) == (
        "Longer consult", "updated", other_host, "showed")
    assert body["end_time"] == end.isoformat() and body["start_time"] == appt["start_time"]
    with factory() as s:
        events = s.query(DomainEvent).filter_by(appointment_id=appt["id"]).order_by(DomainEvent.id).all()
        assert [e.kind for e in events] == ["appointment.booked", "appointment.rescheduled",
                                            "appointment.updated", "appointment.status_changed"]
        assert {e.payload["modified_by"] for e in events} == {"api"}


def test_failed_patch_changes_nothing(api, world, clock, factory):
    appt = _book(api, world, clock, days=3)
    before = counts(factory, DomainEvent)
    # The title is fine, the end time is not: neither may be saved.
    response = api.patch(f"/appointments/{appt['id']}", {
        "title": "New title", "end_time": _iso(clock.now() + timedelta(days=2)),
    })
    assert response.status_code == 422 and "end_time" in error_fields(response)
    assert api.get(f"/appointments/{appt['id']}").get_json() == appt
    assert counts(factory, DomainEvent) == before


def test_reactivate_and_reschedule_a_cancelled_appointment(api, world, clock):
    appt = _book(api, world, clock, days=3)
    api.post(f"/appointments/{appt['id']}/cancel")
    stuck = api.patch(f"/appointments/{appt['id']}", {"start_time": _iso(clock.now() + timedelta(days=4))})
    assert stuck.status_code == 409
    new_start = clock.now() + timedelta(days=4)
    revived = api.patch(f"/appointments/{appt['id']}", {"status": "confirmed", "start_time": _iso(new_start)})
    assert revived.status_code == 200, revived.get_json()
    assert revived.get_json()["status"] == "confirmed"
    assert revived.get_json()["start_time"] == new_start.isoformat()
    assert revived.get_json()["meeting"]["state"] == "pending"


def test_static_calendar_shows_its_location_at_once(api, world, clock):
    appt = _book(api, world, clock, calendar_id=world.static_calendar_id)
    assert appt["assigned_user_id"] is None
    assert appt["meeting"]["state"] == "none"
    assert appt["meeting_location"] == "https://meet.example.com/static-room"


def test_list_filters_and_pagination(api, world, clock):
    ids = [_book(api, world, clock, days=d)["id"] for d in (1, 2, 3)]
    eli = _book(api, world, clock, days=4, contact_id=world.eli_id)["id"]
    api.post(f"/appointments/{ids[0]}/cancel")
    assert [a["id"] for a in api.get("/appointments?status=cancelled").get_json()["items"]] == [ids[0]]
    assert [a["id"] for a in api.get(f"/appointments?contact_id={world.eli_id}").get_json()["items"]] == [eli]
    assert api.get(f"/appointments?calendar_id={world.static_calendar_id}").get_json()["items"] == []

    seen, cursor, pages = [], None, 0
    while True:
        query = "/appointments?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = api.get(query).get_json()
        seen += [a["id"] for a in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert pages == 2
    assert sorted(seen) == sorted([*ids, eli]) and len(seen) == 4
