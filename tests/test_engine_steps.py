"""Step semantics through the real engine: waits and their past-time policies, conditions,
flow control, sends and their skip reasons, internal notifications."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from automations.booking import contacts
from automations.documents import workflows
from automations.documents.workflow_schema import load_document
from automations.store.models import Appointment, Contact, Enrollment, Location, Notification, WorkflowVersion
from tests.factories import book, doc, log_lines, messages, publish

EMAIL = {"id": "email", "type": "send_email", "subject": "S", "body": "B {{contact.first_name}}"}
SMS = {"id": "sms", "type": "send_sms", "body": "T"}
STAFF = {"id": "staff", "type": "internal_notification", "channel": "in_app", "body": "staff {{contact.name}}"}


def run(factory, runtime, clock, world, steps, *, settings=None, **booking):
    with factory() as s, s.begin():
        publish(s, world, doc(*steps, **(settings or {})), clock.now())
        appt = book(s, world, clock.now(), **booking)
    runtime.tick()
    return appt


def only_enrollment(s) -> Enrollment:
    return s.scalars(select(Enrollment)).one()


def test_time_delay_with_window_waits_for_the_opening(factory, runtime, clock, world):
    # 2026-11-02 14:00 UTC is Monday 09:00 in New York; +10h = 19:00, outside 09-17 → Tuesday 09:00.
    steps = ({"id": "w", "type": "wait_time_delay", "amount": 10, "unit": "hours",
              "window": {"days": ["mon", "tue"], "start": "09:00", "end": "17:00"}}, SMS)
    run(factory, runtime, clock, world, steps)
    with factory() as s:
        assert only_enrollment(s).wake_at == datetime(2026, 11, 3, 14, 0, tzinfo=UTC)


def test_window_uses_contact_timezone_when_set(factory, runtime, clock, world):
    steps = ({"id": "w", "type": "wait_time_delay", "amount": 0, "unit": "minutes",
              "window": {"start": "09:00", "end": "17:00"}}, SMS)
    # Eli is in Los Angeles: 06:00 there at 14:00 UTC → waits for 09:00 PT = 17:00 UTC.
    run(factory, runtime, clock, world, steps, settings={"timezone_mode": "contact"}, contact_id=world.eli_id)
    with factory() as s:
        assert only_enrollment(s).wake_at == datetime(2026, 11, 2, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize("direction", ["before", "after", "exact"])
def test_appointment_time_directions(factory, runtime, clock, world, direction):
    start = datetime(2026, 11, 10, 20, 0, tzinfo=UTC)
    steps = ({"id": "w", "type": "wait_appointment_time", "direction": direction, "hours": 2, "minutes": 30}, SMS)
    run(factory, runtime, clock, world, steps, start=start)
    expected = {"before": start - timedelta(hours=2, minutes=30), "after": start + timedelta(hours=2, minutes=30),
                "exact": start}[direction]
    with factory() as s:
        assert only_enrollment(s).wake_at == expected


def test_appointment_days_are_calendar_days_across_dst(factory, runtime, clock, world):
    # 09:00 New York on Sunday 2027-03-14 (the day DST starts): 1 day before is 09:00 EST on the 13th.
    start = datetime(2027, 3, 14, 13, 0, tzinfo=UTC)
    steps = ({"id": "w", "type": "wait_appointment_time", "direction": "before", "days": 1}, SMS)
    run(factory, runtime, clock, world, steps, start=start)
    with factory() as s:
        assert only_enrollment(s).wake_at == datetime(2027, 3, 13, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "days", "wake"),
    [
        # 02:30 EDT on Monday 2027-03-15; a day before is 02:30 on the 14th, which New York skips: 03:30 EDT.
        (datetime(2027, 3, 15, 6, 30, tzinfo=UTC), 1, datetime(2027, 3, 14, 7, 30, tzinfo=UTC)),
        # 45 days before is 45 calendar days, never 1 month 15 days.
        (datetime(2027, 1, 20, 15, 0, tzinfo=UTC), 45, datetime(2026, 12, 6, 15, 0, tzinfo=UTC)),
    ],
    ids=["day-before-in-gap", "45-days"],
)
def test_days_before_through_the_engine(factory, runtime, clock, world, start, days, wake):
    steps = ({"id": "w", "type": "wait_appointment_time", "direction": "before", "days": days}, SMS)
    run(factory, runtime, clock, world, steps, start=start)
    with factory() as s:
        assert only_enrollment(s).wake_at == wake


def test_past_policy_next(factory, runtime, clock, world):
    steps = ({"id": "w", "type": "wait_appointment_time", "direction": "before", "days": 2}, EMAIL, SMS)
    run(factory, runtime, clock, world, steps, start=clock.now() + timedelta(hours=5))
    with factory() as s:
        assert [m.channel for m in messages(s)] == ["email", "sms"]
        assert "moving to the next step" in log_lines(s, only_enrollment(s).id)[1][2]


def test_past_policy_goto(factory, runtime, clock, world):
    steps = ({"id": "w", "type": "wait_appointment_time", "direction": "before", "days": 2,
              "if_past": {"action": "goto", "target": "sms"}}, EMAIL, SMS)
    run(factory, runtime, clock, world, steps, start=clock.now() + timedelta(hours=5))
    with factory() as s:
        assert [m.channel for m in messages(s)] == ["sms"]


def test_past_policy_skip_outbound_until_next_wait(factory, runtime, clock, world):
    start = clock.now() + timedelta(hours=5)
    steps = (
        {"id": "w1", "type": "wait_appointment_time", "direction": "before", "days": 1, "if_past": {"action": "skip_outbound"}},
        EMAIL, SMS, STAFF,
        {"id": "w2", "type": "wait_appointment_time", "direction": "before", "hours": 1},
        {"id": "sms2", "type": "send_sms", "body": "one hour"},
    )
    run(factory, runtime, clock, world, steps, start=start)
    with factory() as s:
        assert [m.channel for m in messages(s)] == ["in_app"]  # internal notifications are not outbound
        lines = log_lines(s, only_enrollment(s).id)
        assert [(step, outcome) for step, outcome, _ in lines[2:4]] == [("email", "skipped"), ("sms", "skipped")]
        assert all("past-time policy" in reason for _, _, reason in lines[1:4])
    clock.set(start - timedelta(hours=1))
    runtime.tick()
    with factory() as s:
        assert [m.body for m in messages(s)][-1] == "one hour"  # skipping ended at the next wait


def test_wait_condition_resumes_on_contact_change(factory, runtime, clock, world):
    steps = ({"id": "w", "type": "wait_condition", "condition": {"rules": [{"field": "contact.tags", "op": "contains",
              "value": "paid"}]}, "timeout": {"amount": 2, "unit": "days"}, "on_timeout": "late"},
             {"id": "thanks", "type": "send_sms", "body": "thanks", "next": "end"},
             {"id": "late", "type": "send_sms", "body": "still unpaid"})
    run(factory, runtime, clock, world, steps)
    with factory() as s:
        assert only_enrollment(s).wait_kind == "condition" and not messages(s)
    with factory() as s, s.begin():
        contacts.update(s, s.get(Location, world.location_id), s.get(Contact, world.dana_id), {"tags": ["paid"]},
                        now=clock.now())
    runtime.tick()
    with factory() as s:
        assert [m.body for m in messages(s)] == ["thanks"]
        assert only_enrollment(s).state == "completed"


def test_wait_condition_times_out(factory, runtime, clock, world):
    steps = ({"id": "w", "type": "wait_condition", "condition": {"rules": [{"field": "appointment.status", "op": "equals",
              "value": "showed"}]}, "timeout": {"amount": 1, "unit": "hours"}, "on_timeout": "late"},
             {"id": "ok", "type": "send_sms", "body": "showed", "next": "end"},
             {"id": "late", "type": "send_sms", "body": "timed out"})
    run(factory, runtime, clock, world, steps)
    clock.advance(minutes=59)
    runtime.tick()
    with factory() as s:
        assert not messages(s)
    clock.advance(minutes=1)
    runtime.tick()
    with factory() as s:
        assert [m.body for m in messages(s)] == ["timed out"]


def test_if_else_first_true_branch_wins_and_sees_rescheduled(factory, runtime, clock, world):
    steps = (
        {"id": "check", "type": "if_else", "branches": [
            {"name": "moved", "condition": {"rules": [{"field": "appointment.rescheduled", "op": "is_true"}]}, "target": "a"},
            {"name": "ny", "condition": {"match": "any", "rules": [{"field": "contact.timezone", "op": "equals",
                                                                      "value": "America/New_York"}]}, "target": "b"},
            {"name": "also ny", "condition": {"rules": [{"field": "contact.first_name", "op": "equals", "value": "Dana"}]},
             "target": "a"},
        ], "otherwise": "c"},
        {"id": "a", "type": "send_sms", "body": "A", "next": "end"},
        {"id": "b", "type": "send_sms", "body": "B", "next": "end"},
        {"id": "c", "type": "send_sms", "body": "C"},
    )
    run(factory, runtime, clock, world, steps)
    with factory() as s:
        assert [m.body for m in messages(s)] == ["B"]
        assert "ny matched" in log_lines(s, only_enrollment(s).id)[1][2]


def publish_unchecked(session, world, document, now):
    """A version as an older release could have published it (before loops were refused)."""
    loc = session.get(Location, world.location_id)
    wf = workflows.create(session, loc, document, now=now)
    version = WorkflowVersion(workflow_id=wf.id, number=1, document=load_document(document), published_at=now)
    session.add(version)
    session.flush()
    wf.current_version_id, wf.status = version.id, "published"
    return wf


def run_unchecked(factory, runtime, clock, world, steps, **booking):
    with factory() as s, s.begin():
        publish_unchecked(s, world, doc(*steps), clock.now())
        appt = book(s, world, clock.now(), **booking)
    runtime.tick()
    return appt


def test_goto_loop_without_wait_fails_cleanly(factory, runtime, clock, world):
    steps = ({"id": "a", "type": "goto", "target": "b"}, {"id": "b", "type": "goto", "target": "a"})
    run_unchecked(factory, runtime, clock, world, steps)
    with factory() as s:
        enr = only_enrollment(s)
        assert enr.state == "failed" and "goto loop" in enr.exit_reason


def test_update_status_and_remove(factory, runtime, clock, world):
    steps = ({"id": "u", "type": "update_appointment_status", "status": "showed"},
             {"id": "r", "type": "remove_from_workflow"}, SMS)
    appt = run(factory, runtime, clock, world, steps)
    with factory() as s:
        assert s.get(Appointment, appt.id).status == "showed"
        enr = only_enrollment(s)
        assert enr.state == "exited" and enr.exit_reason == "removed from workflow by step"
        assert not messages(s)


def test_sends_skip_with_reasons(factory, runtime, clock, world):
    with factory() as s, s.begin():
        s.get(Contact, world.dana_id).sms_dnd = True
    run(factory, runtime, clock, world, (EMAIL, SMS))
    with factory() as s, s.begin():
        book(s, world, clock.now(), contact_id=world.eli_id, start=clock.now() + timedelta(days=5))
    runtime.tick()
    with factory() as s:
        reasons = sorted(r for e in s.scalars(select(Enrollment)) for _, o, r in log_lines(s, e.id) if o == "skipped")
        assert reasons == ["skipped: contact has no phone number", "skipped: contact opted out of SMS"]
        assert sorted(m.to_address for m in messages(s)) == ["dana@example.com", "eli@example.com"]


def test_internal_notification_recipients(factory, runtime, clock, world):
    steps = (
        {"id": "n1", "type": "internal_notification", "channel": "email", "recipients": "assigned_user",
         "subject": "Booked", "body": "{{appointment.start_time}}"},
        {"id": "n2", "type": "internal_notification", "channel": "sms", "recipients": "all_users", "body": "x"},
        {"id": "n3", "type": "internal_notification", "channel": "in_app", "recipients": "users",
         "user_ids": [world.alice_id], "body": "bell"},
        {"id": "n4", "type": "internal_notification", "channel": "email", "recipients": "custom",
         "emails": ["ops@example.org"], "body": "ops"},
    )
    run(factory, runtime, clock, world, steps, assigned_user_id=world.bob_id, start=datetime(2026, 11, 10, 20, 0, tzinfo=UTC))
    with factory() as s:
        got = sorted((m.channel, m.audience, m.to_address) for m in messages(s))
        assert got == sorted([
            ("email", "user", "bob@example.com"), ("sms", "user", "+12125550101"), ("sms", "user", "+12125550102"),
            ("in_app", "user", world.alice_id), ("email", "custom", "ops@example.org"),
        ])
        bob_email = next(m for m in messages(s) if m.to_address == "bob@example.com")
        assert bob_email.body == "Tuesday, November 10, 2026 at 2:00 PM CST"  # Bob's own time zone
        (bell,) = s.scalars(select(Notification)).all()
        assert bell.user_id == world.alice_id and bell.body == "bell"


def test_contact_sees_own_time_zone(factory, runtime, clock, world):
    steps = ({"id": "e", "type": "send_email", "subject": "{{appointment.only_start_time}}", "body": "x"},)
    run(factory, runtime, clock, world, steps, contact_id=world.eli_id, start=datetime(2026, 11, 10, 20, 0, tzinfo=UTC))
    with factory() as s:
        assert messages(s)[0].subject == "12:00 PM PST"


def test_render_at_send_time_uses_current_data(factory, runtime, clock, world):
    steps = ({"id": "w", "type": "wait_time_delay", "amount": 1, "unit": "hours"},
             {"id": "e", "type": "send_email", "subject": "Hi {{contact.first_name}}", "body": "x"})
    run(factory, runtime, clock, world, steps)
    with factory() as s, s.begin():
        s.get(Contact, world.dana_id).first_name = "Danielle"
    clock.advance(hours=1)
    runtime.tick()
    with factory() as s:
        assert messages(s)[0].subject == "Hi Danielle"
