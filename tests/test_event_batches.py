"""Domain events are handled a batch per savepoint; one broken event is isolated, never stalls the rest."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, select

from automations.booking import domain_events
from automations.engine import events
from automations.store.models import DomainEvent, Enrollment, EnrollmentLog
from automations.store.states import EnrollmentState, EventKind
from tests.factories import book, doc, messages, publish


def test_a_broken_event_is_recorded_and_the_rest_of_its_batch_still_runs(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "sms", "type": "send_sms", "body": "hi"}), clock.now())
        first = book(s, world, clock.now())
        # A meeting.resolved event without its meeting id: handling it raises.
        domain_events.emit(s, location_id=world.location_id, kind=EventKind.MEETING_RESOLVED, now=clock.now())
        second = book(s, world, clock.now(), start=clock.now() + timedelta(days=4))
    runtime.tick()
    with factory() as s:
        # Both bookings around the broken event were handled: each got its text.
        assert sorted(m.appointment_id for m in messages(s, status="sent", channel="sms")) == sorted([first.id, second.id])
        events = list(s.scalars(select(DomainEvent).order_by(DomainEvent.id)))
        assert all(e.processed_at == clock.now() for e in events)
        broken = [e for e in events if e.error]
        assert [e.kind for e in broken] == [EventKind.MEETING_RESOLVED] and "KeyError" in broken[0].error


def _statements_to_handle(factory, engine, clock, world, bookings: int) -> int:
    """Statements run while one batch of ``bookings`` booked events is handled (each enrolls and waits)."""
    with factory() as s, s.begin():
        for i in range(bookings):
            book(s, world, clock.now(), start=clock.now() + timedelta(days=3, hours=i))
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        with factory() as s, s.begin():
            assert events.process_batch(s, clock.now(), limit=100) == bookings
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_a_batch_of_bookings_is_enrolled_in_a_fixed_number_of_statements(factory, engine, clock, world):
    """Each event's enrollment, its log line and its wait are written in the batch's one flush, and the
    re-entry checks read the batch's enrollments in one query: 3 bookings and 12 cost the same round trips."""
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "w", "type": "wait_time_delay", "amount": 1, "unit": "days"}), clock.now())
    few = _statements_to_handle(factory, engine, clock, world, 3)
    many = _statements_to_handle(factory, engine, clock, world, 12)
    assert many == few
    with factory() as s:
        waiting = list(s.scalars(select(Enrollment).where(Enrollment.state == EnrollmentState.WAITING)))
        assert len(waiting) == 15 and all(e.live for e in waiting)
        assert len(list(s.scalars(select(EnrollmentLog)))) >= 30  # enrolled, then waiting, for each


def test_an_enrollment_that_ends_before_the_batch_is_written_is_not_live(factory, runtime, clock, world):
    """Started and finished inside one batch, an enrollment is inserted finished (live NULL), so the
    appointment can enter the workflow again later (re-entry on) instead of hitting the one-live-run index."""
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "sms", "type": "send_sms", "body": "hi"}, statuses=(), allow_reentry=True),
                clock.now())
        book(s, world, clock.now(), status="new")
    runtime.tick()
    with factory() as s:
        (first,) = s.scalars(select(Enrollment))
        assert first.state == EnrollmentState.COMPLETED and first.live is None
