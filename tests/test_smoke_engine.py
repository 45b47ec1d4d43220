"""A first end-to-end pass: book → enroll → confirmation in the capture outbox."""

from __future__ import annotations

from datetime import timedelta

from automations.store.models import Enrollment
from tests.factories import book, doc, log_lines, messages, publish


def test_booking_sends_confirmation_and_reminder(factory, runtime, clock, world):
    steps = (
        {"id": "e1", "type": "send_email", "subject": "Hi {{contact.first_name}}", "body": "Link: {{appointment.meeting_location}}"},
        {"id": "w1", "type": "wait_appointment_time", "direction": "before", "days": 1},
        {"id": "s1", "type": "send_sms", "body": "Tomorrow {{appointment.only_start_time}}"},
    )
    with factory() as s, s.begin():
        publish(s, world, doc(*steps), clock.now())
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=3))
    runtime.tick()
    with factory() as s:
        sent = messages(s)
        assert [m.channel for m in sent] == ["email"]
        assert sent[0].status == "sent"
        assert sent[0].subject == "Hi Dana"
        assert "sandbox.punctual.invalid" in sent[0].body
        enr = s.query(Enrollment).one()
        assert enr.state == "waiting"
        assert enr.wake_at == appt.start_at - timedelta(days=1)
    clock.set(appt.start_at - timedelta(days=1))
    runtime.tick()
    with factory() as s:
        assert [m.channel for m in messages(s)] == ["email", "sms"]
        enr = s.query(Enrollment).one()
        assert enr.state == "completed"
        assert [o for _, o, _ in log_lines(s, enr.id)] == ["enrolled", "queued", "waiting", "resumed", "queued", "completed"]
