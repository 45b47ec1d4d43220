"""Enrollment: trigger filters, once per (workflow, appointment), the same event never enrolls twice,
drafts never run, enrollments run the version they started on."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from automations.booking import appointments, contacts
from automations.documents import workflows
from automations.engine import events
from automations.store.models import Appointment, Contact, DomainEvent, Enrollment, Location, Workflow
from automations.store.states import ModifiedBy
from tests.factories import book, doc, messages, publish

SMS = {"id": "s", "type": "send_sms", "body": "hi {{contact.first_name}}"}


def enrolled(session) -> list[Enrollment]:
    return list(session.scalars(select(Enrollment).order_by(Enrollment.created_at, Enrollment.id)))


@pytest.mark.parametrize(
    ("filters", "booking", "should_enroll"),
    [
        ({}, {}, True),
        ({"statuses": ["new"]}, {}, False),  # calendar auto-confirms
        ({"statuses": ["new"]}, {"status": "new"}, True),
        ({"event_type": "recurring"}, {}, False),
        ({"event_type": "recurring"}, {"is_recurring": True}, True),
        ({"event_type": "normal"}, {"is_recurring": True}, False),
        ({"modified_by": ["customer"]}, {}, False),
        ({"modified_by": ["customer"]}, {"modified_by": ModifiedBy.CUSTOMER}, True),
        ({"contact_tags": ["vip"]}, {}, False),
    ],
)
def test_filters(factory, runtime, clock, world, filters, booking, should_enroll):
    d = doc(SMS)
    d["triggers"][0]["filters"] = filters
    with factory() as s, s.begin():
        publish(s, world, d, clock.now())
        book(s, world, clock.now(), **booking)
    runtime.tick()
    with factory() as s:
        assert bool(enrolled(s)) is should_enroll


def test_calendar_user_and_tag_filters(factory, runtime, clock, world):
    with factory() as s, s.begin():
        d = doc(SMS)
        d["triggers"][0]["filters"] = {"calendars": [world.static_calendar_id]}
        publish(s, world, d, clock.now())
        d2 = doc(SMS, name="bob only")
        d2["triggers"][0]["filters"] = {"assigned_users": [world.bob_id], "contact_tags": ["VIP"]}
        publish(s, world, d2, clock.now())
        loc = s.get(Location, world.location_id)
        contacts.update(s, loc, s.get(Contact, world.dana_id), {"tags": ["vip"]}, now=clock.now())
        book(s, world, clock.now(), assigned_user_id=world.bob_id)  # consultation calendar, Bob, VIP
        book(s, world, clock.now(), calendar_id=world.static_calendar_id, contact_id=world.eli_id)
    runtime.tick()
    with factory() as s:
        got = {(s.get(Workflow, e.workflow_id).name, s.get(Appointment, e.appointment_id).calendar_id) for e in enrolled(s)}
        assert got == {("Test workflow", world.static_calendar_id), ("bob only", world.calendar_id)}


def test_status_changes_fire_and_once_per_appointment(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(SMS, statuses=()), clock.now())  # every status
        appt = book(s, world, clock.now(), status="new")
    runtime.tick()
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, appt.id), "confirmed", modified_by="user", now=clock.now())
    runtime.tick()
    with factory() as s:
        rows = enrolled(s)
        assert len(rows) == 1 and rows[0].state == "completed"  # re-entry is off by default
        assert len(messages(s, channel="sms")) == 1


def test_reentry_allowed_by_setting(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(SMS, statuses=(), allow_reentry=True), clock.now())
        appt = book(s, world, clock.now(), status="new")
    runtime.tick()
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, appt.id), "confirmed", modified_by="user", now=clock.now())
    runtime.tick()
    with factory() as s:
        assert sorted(e.trigger_status for e in enrolled(s)) == ["confirmed", "new"]


def test_same_event_never_enrolls_twice(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(SMS, allow_reentry=True), clock.now())
        book(s, world, clock.now())
    runtime.tick()
    with factory() as s, s.begin():
        # A redelivered event (as after a crash between handling and marking it processed).
        event = s.scalars(select(DomainEvent)).first()
        event.processed_at = None
    runtime.tick()
    with factory() as s:
        assert len(enrolled(s)) == 1
        assert len(messages(s)) == 1


def test_drafts_never_run_and_versions_stick(factory, runtime, clock, world):
    with factory() as s, s.begin():
        loc = s.get(Location, world.location_id)
        workflows.create(s, loc, doc(SMS, name="draft only"), now=clock.now())
        wf = publish(s, world, doc({"id": "w", "type": "wait_time_delay", "amount": 1, "unit": "hours"},
                                   {"id": "s", "type": "send_sms", "body": "version one"}), clock.now())
        book(s, world, clock.now())
    runtime.tick()
    with factory() as s, s.begin():
        wf = s.get(Workflow, wf.id)
        workflows.update_draft(s, wf, doc({"id": "w", "type": "wait_time_delay", "amount": 1, "unit": "hours"},
                                          {"id": "s", "type": "send_sms", "body": "version two"}), now=clock.now())
        workflows.publish(s, wf, now=clock.now())
        book(s, world, clock.now(), contact_id=world.eli_id, start=clock.now() + timedelta(days=4))
        s.get(Contact, world.eli_id).phone = "+13105550100"
    runtime.tick()
    clock.advance(hours=1)
    runtime.tick()
    with factory() as s:
        bodies = sorted(m.body for m in messages(s, channel="sms"))
        assert bodies == ["version one", "version two"]
        assert {s.get(Workflow, e.workflow_id).name for e in enrolled(s)} == {"Test workflow"}


def test_events_for_one_appointment_are_handled_in_order(factory, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(SMS), clock.now())
        appt = book(s, world, clock.now())
        appointments.change_status(s, appt, "cancelled", modified_by="api", now=clock.now())
    with factory() as s, s.begin():
        # Only the oldest unhandled event of an appointment can be claimed: a cancel is never handled
        # before (or alongside) the booking it cancels.
        assert [e.kind for e in events.claim_batch(s, 10)] == ["appointment.booked"]
        assert events.process_batch(s, clock.now(), limit=10) == 1
    with factory() as s, s.begin():
        assert [e.kind for e in events.claim_batch(s, 10)] == ["appointment.status_changed"]
