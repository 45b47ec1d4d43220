"""Retention: finished work past the cutoff is deleted in bounded batches; live and unfinished work,
and everything newer, stays (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, func, select, update

from automations.engine import retention, scheduler
from automations.engine.runtime import Runtime
from automations.settings import Settings
from automations.store.models import DomainEvent, Enrollment, EnrollmentLog, Message, Notification
from automations.store.states import MessageStatus
from tests.factories import book, doc, publish


def counts(factory) -> dict[str, int]:
    with factory() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                for m in (Enrollment, EnrollmentLog, Message, DomainEvent)}


def test_prune_deletes_only_finished_work_older_than_the_cutoff(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "sms", "type": "send_sms", "body": "hi"},
                              {"id": "note", "type": "internal_notification", "channel": "in_app",
                               "recipients": "assigned_user", "body": "booked"}), clock.now())
        old = [book(s, world, clock.now(), start=clock.now() + timedelta(days=1, hours=i)).id for i in range(3)]
    runtime.tick()
    clock.advance(days=100)
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "wait", "type": "wait_time_delay", "amount": 400, "unit": "days"},
                              {"id": "sms", "type": "send_sms", "body": "later"}, name="Slow"), clock.now())
        recent = book(s, world, clock.now(), start=clock.now() + timedelta(days=2), contact_id=world.eli_id).id
    runtime.tick()
    with factory() as s, s.begin():  # one old finished enrollment still has a message being retried
        retrying = s.scalar(select(Enrollment).where(Enrollment.appointment_id == old[0]))
        s.execute(update(Message).where(Message.enrollment_id == retrying.id, Message.channel == "sms")
                  .values(status=MessageStatus.PENDING, due_at=clock.now() + timedelta(hours=1)))
    before = counts(factory)
    with factory() as s:
        old_events = s.scalar(select(func.count()).select_from(DomainEvent).where(DomainEvent.processed_at < clock.now()))
    with factory() as s:
        notes = s.scalar(select(func.count()).select_from(Notification))
        notes_linked = s.scalar(select(func.count()).select_from(Notification).where(Notification.message_id.is_not(None)))
    assert notes_linked == notes == 4  # three old bookings, one recent (both workflows match it)

    done = retention.prune(factory, clock.now(), days=90, batch=1)

    with factory() as s:
        left = {e.appointment_id: e.state for e in s.scalars(select(Enrollment))}
        # The two fully finished old enrollments are gone; the retrying one and the new ones stay.
        assert set(left) == {old[0], recent}
        assert s.scalar(select(func.count()).select_from(Message).where(Message.appointment_id.in_(old[1:]))) == 0
        assert s.scalar(select(func.count()).select_from(Message).where(Message.appointment_id == old[0])) == 2
        assert s.scalar(select(func.count()).select_from(EnrollmentLog).join(
            Enrollment, Enrollment.id == EnrollmentLog.enrollment_id)) == s.scalar(
            select(func.count()).select_from(EnrollmentLog))  # no orphan log rows
        # Old processed events are gone; the recent ones (the booking, its meeting) stay.
        assert min(e.processed_at for e in s.scalars(select(DomainEvent))) == clock.now()
        assert recent in {e.appointment_id for e in s.scalars(select(DomainEvent))}
        # The in-app notes stay; only their links to deleted messages are cleared.
        assert s.scalar(select(func.count()).select_from(Notification)) == notes
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.message_id.is_not(None))) \
            == notes_linked - 2
    after = counts(factory)
    assert done["enrollments"] == 2 and done["domain_events"] == old_events >= 3
    assert done["messages"] == before["messages"] - after["messages"] == 4
    assert done["enrollment_logs"] == before["enrollment_logs"] - after["enrollment_logs"] > 0
    # batch=1: one enrollment (or event) per transaction
    assert done["batches"] == 2 + old_events

    assert retention.prune(factory, clock.now(), days=90, batch=1)["batches"] == 0  # idempotent


def test_prune_transactions_are_bounded_and_zero_days_keeps_everything(factory, engine, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "sms", "type": "send_sms", "body": "hi"}), clock.now())
        for i in range(5):
            book(s, world, clock.now(), start=clock.now() + timedelta(days=1, hours=i))
    runtime.tick()
    clock.advance(days=91)
    assert retention.prune(factory, clock.now(), days=0) == {
        "enrollments": 0, "enrollment_logs": 0, "messages": 0, "domain_events": 0, "batches": 0}
    assert counts(factory)["enrollments"] == 5

    deletes: list[str] = []

    def note(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("DELETE FROM ENROLLMENTS"):
            deletes.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        done = retention.prune(factory, clock.now(), days=90, batch=2, max_batches=2)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert done["enrollments"] == 4 and done["batches"] == 2 and len(deletes) == 2  # 2 per transaction, then stop
    assert retention.prune(factory, clock.now(), days=90, batch=2)["enrollments"] == 1  # the next run carries on


def test_the_worker_runs_retention_daily_from_settings(factory, clock):
    runtime = Runtime(factory, clock=clock, settings=Settings(retention_days=30, retention_batch=10))
    sched = scheduler.background(runtime)
    job = sched.get_job("retention")
    assert job is not None and str(job.trigger) == "cron[hour='3', minute='0']"
    assert Settings.from_env().retention_days == 90
