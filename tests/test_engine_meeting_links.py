"""Sends that render ``appointment.meeting_location`` wait for a pending meeting link, are released
the moment it resolves, and follow the workflow's policy when it fails. Never an empty link."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from automations.booking import appointments
from automations.store.models import Appointment, Meeting, Notification
from providers.sandbox_meetings import SANDBOX_URL
from tests.factories import book, doc, messages, publish

LINK_SMS = {"id": "sms", "type": "send_sms", "body": "Join: {{appointment.meeting_location}}"}
PLAIN_SMS = {"id": "plain", "type": "send_sms", "body": "No link here"}


def setup(factory, clock, world, *steps, **settings):
    with factory() as s, s.begin():
        publish(s, world, doc(*steps, **settings), clock.now())
        return book(s, world, clock.now())


def test_send_waits_for_pending_link_then_goes_with_it(factory, runtime, providers, clock, world):
    providers.meetings.hold = True  # Zoom is slow today
    setup(factory, clock, world, LINK_SMS, PLAIN_SMS)
    runtime.tick()
    with factory() as s:
        by_step = {m.step_id: m for m in messages(s)}
        assert by_step["plain"].status == "sent"  # no link needed, not held
        assert by_step["sms"].status == "pending" and by_step["sms"].status_reason == "waiting for the meeting link"
    providers.meetings.hold = False
    clock.advance(seconds=10)  # the meeting job retries after its backoff
    runtime.tick()
    with factory() as s:
        held = {m.step_id: m for m in messages(s)}["sms"]
        assert held.status == "sent" and held.body.startswith(f"Join: {SANDBOX_URL}")
        assert held.sent_at == clock.now()  # released the moment the link resolved, not at hold_until


def test_failed_link_uses_calendar_fallback(factory, runtime, providers, clock, world):
    providers.meetings.fail = True
    setup(factory, clock, world, LINK_SMS)
    runtime.tick()
    with factory() as s:
        (m,) = messages(s)
        assert m.status == "sent" and m.body == "Join: Phone: +1 212 555 0100"
        assert s.scalars(select(Meeting)).one().status == "failed"


def test_hold_and_alert_policy_never_sends_without_link(factory, runtime, providers, clock, world):
    providers.meetings.fail = True
    setup(factory, clock, world, LINK_SMS, meeting_link={"policy": "hold_and_alert", "wait_seconds": 60})
    runtime.tick()
    clock.advance(hours=1)
    runtime.tick()
    with factory() as s:
        (m,) = messages(s)
        assert m.status == "pending" and "host alerted" in m.status_reason
        alerts = s.scalars(select(Notification)).all()
        assert len(alerts) == 1 and "meeting link" in alerts[0].title


def test_pending_link_times_out_to_fallback(factory, runtime, providers, clock, world):
    providers.meetings.hold = True
    setup(factory, clock, world, LINK_SMS, meeting_link={"policy": "fallback", "wait_seconds": 120})
    runtime.tick()
    clock.advance(seconds=119)
    runtime.tick()
    with factory() as s:
        assert messages(s)[0].status == "pending"
    clock.advance(seconds=1)
    runtime.tick()
    with factory() as s:
        assert messages(s)[0].body == "Join: Phone: +1 212 555 0100"


def test_same_host_same_slot_share_one_meeting_and_cancel_keeps_it(factory, runtime, providers, clock, world):
    start = clock.now() + timedelta(days=2)
    with factory() as s, s.begin():
        a = book(s, world, clock.now(), start=start, assigned_user_id=world.alice_id)
        b = book(s, world, clock.now(), start=start, contact_id=world.eli_id, assigned_user_id=world.alice_id)
    runtime.tick()
    with factory() as s:
        a, b = s.get(Appointment, a.id), s.get(Appointment, b.id)
        assert a.meeting_id == b.meeting_id
        assert len(providers.meetings.created) == 1
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, a.id), "cancelled", modified_by="api", now=clock.now())
    runtime.tick()
    assert providers.meetings.deleted == []  # b still uses it
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, b.id), "cancelled", modified_by="api", now=clock.now())
    runtime.tick()
    with factory() as s:
        assert s.scalars(select(Meeting)).one().status == "deleted"
    assert len(providers.meetings.deleted) == 1


def test_reschedule_gets_new_link_or_reuses_slot_holder(factory, runtime, providers, clock, world):
    t1, t2 = clock.now() + timedelta(days=2), clock.now() + timedelta(days=3)
    with factory() as s, s.begin():
        a = book(s, world, clock.now(), start=t1, assigned_user_id=world.alice_id)
        b = book(s, world, clock.now(), start=t2, contact_id=world.eli_id, assigned_user_id=world.alice_id)
    runtime.tick()
    with factory() as s, s.begin():
        appt = s.get(Appointment, a.id)
        old_meeting = appt.meeting_id
        appointments.reschedule(s, appt, start_at=t2, end_at=None, modified_by="user", now=clock.now())
    runtime.tick()
    with factory() as s:
        moved = s.get(Appointment, a.id)
        assert moved.meeting_id == s.get(Appointment, b.id).meeting_id != old_meeting
        assert s.get(Meeting, old_meeting).status == "deleted"
