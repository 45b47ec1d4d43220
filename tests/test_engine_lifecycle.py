"""Cancellation exits (and withdraws pending messages), reschedule restart and recalculate."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from automations.booking import appointments
from automations.store.models import Appointment, Enrollment, Message
from tests.factories import book, doc, log_lines, messages, publish

REMINDERS = (
    {"id": "confirm", "type": "send_sms", "body": "Booked {{appointment.start_time}}{{appointment.rescheduled}}"},
    {"id": "w1", "type": "wait_appointment_time", "direction": "before", "days": 1},
    {"id": "remind", "type": "send_sms", "body": "Tomorrow!"},
)


def live(session) -> list[Enrollment]:
    return list(session.scalars(select(Enrollment).where(Enrollment.live.is_(True))))


def test_cancel_exits_and_no_reminder_goes_out(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(*REMINDERS), clock.now())
        appt = book(s, world, clock.now())
    runtime.tick()
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, appt.id), "cancelled", modified_by="customer", now=clock.now())
    runtime.tick()
    clock.set(appt.start_at - timedelta(hours=23))
    runtime.tick()
    with factory() as s:
        assert [m.body.startswith("Booked") for m in messages(s)] == [True]
        enr = s.scalars(select(Enrollment)).one()
        assert enr.state == "exited" and enr.exit_reason.startswith("appointment cancelled")
        assert log_lines(s, enr.id)[-1][1] == "exited"


def test_cancel_withdraws_messages_not_yet_delivered(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(*REMINDERS), clock.now())
        appt = book(s, world, clock.now())
    # Handle the booking (enroll, queue the confirmation) but do not deliver yet.
    runtime.run_events(clock.now())
    with factory() as s, s.begin():
        assert [m.status for m in messages(s)] == ["pending"]
        appointments.change_status(s, s.get(Appointment, appt.id), "cancelled", modified_by="api", now=clock.now())
    runtime.tick()
    with factory() as s:
        (m,) = messages(s)
        assert m.status == "cancelled" and "appointment cancelled" in m.status_reason


def test_cancel_triggers_cancellation_workflows(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(*REMINDERS), clock.now())
        publish(s, world, doc({"id": "sorry", "type": "send_email", "subject": "Cancelled", "body": "See you another time"},
                              statuses=("cancelled",), name="cancelled"), clock.now())
        appt = book(s, world, clock.now())
    runtime.tick()
    with factory() as s, s.begin():
        appointments.change_status(s, s.get(Appointment, appt.id), "noshow", modified_by="user", now=clock.now())
        appointments.change_status(s, s.get(Appointment, appt.id), "cancelled", modified_by="user", now=clock.now())
    runtime.tick()
    with factory() as s:
        assert [m.subject for m in messages(s, channel="email")] == ["Cancelled"]
        states = sorted((e.trigger_status, e.state) for e in s.scalars(select(Enrollment)))
        assert states == [("cancelled", "completed"), ("confirmed", "exited")]


def test_reschedule_restart_reenters_with_flag(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(*REMINDERS), clock.now())
        appt = book(s, world, clock.now())
    runtime.tick()
    new_start = appt.start_at + timedelta(days=2)
    with factory() as s, s.begin():
        assert appointments.reschedule(s, s.get(Appointment, appt.id), start_at=new_start, end_at=None,
                                       modified_by="customer", now=clock.now())
    runtime.tick()
    with factory() as s:
        bodies = [m.body for m in messages(s)]
        assert len(bodies) == 2 and bodies[0].endswith("false") and bodies[1].endswith("true")
        (enr,) = live(s)
        assert enr.rescheduled and enr.wake_at == new_start - timedelta(days=1)
    clock.set(appt.start_at - timedelta(days=1))  # the old reminder time: nothing goes out
    runtime.tick()
    with factory() as s:
        assert len(messages(s)) == 2


def test_reschedule_recalculate_keeps_enrollment(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(*REMINDERS, reschedule="recalculate"), clock.now())
        appt = book(s, world, clock.now())
    runtime.tick()
    with factory() as s:
        (before,) = live(s)
    new_start = appt.start_at + timedelta(days=5)
    with factory() as s, s.begin():
        appointments.reschedule(s, s.get(Appointment, appt.id), start_at=new_start, end_at=None, modified_by="user",
                                now=clock.now())
    runtime.tick()
    with factory() as s:
        (after,) = live(s)
        assert after.id == before.id
        assert after.wake_at == new_start - timedelta(days=1)
        assert len(messages(s)) == 1  # no second confirmation
    clock.set(new_start - timedelta(days=1))
    runtime.tick()
    with factory() as s:
        assert [m.body for m in messages(s)][-1] == "Tomorrow!"


def test_recalculate_into_the_past_applies_the_policy(factory, runtime, clock, world):
    steps = (
        {"id": "w1", "type": "wait_appointment_time", "direction": "before", "days": 1, "if_past": {"action": "skip_outbound"}},
        {"id": "remind", "type": "send_sms", "body": "Tomorrow!"},
        {"id": "staff", "type": "internal_notification", "channel": "in_app", "body": "heads up"},
    )
    with factory() as s, s.begin():
        publish(s, world, doc(*steps, reschedule="recalculate"), clock.now())
        appt = book(s, world, clock.now())
    runtime.tick()
    with factory() as s, s.begin():
        appointments.reschedule(s, s.get(Appointment, appt.id), start_at=clock.now() + timedelta(hours=2), end_at=None,
                                modified_by="user", now=clock.now())
    runtime.tick()
    with factory() as s:
        assert [m.channel for m in messages(s)] == ["in_app"]
        enr = s.scalars(select(Enrollment)).one()
        assert enr.state == "completed"
        assert any("past-time policy" in reason for _, _, reason in log_lines(s, enr.id))


def test_same_time_edit_is_not_a_reschedule(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc(*REMINDERS), clock.now())
        appt = book(s, world, clock.now())
    runtime.tick()
    with factory() as s, s.begin():
        a = s.get(Appointment, appt.id)
        assert not appointments.reschedule(s, a, start_at=a.start_at, end_at=a.end_at, modified_by="user", now=clock.now())
        appointments.update_details(s, a, now=clock.now(), modified_by="user", title="New title")
    runtime.tick()
    with factory() as s:
        assert len(messages(s)) == 1 and len(live(s)) == 1
        assert s.scalars(select(Message)).one().status == "sent"
