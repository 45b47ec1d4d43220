"""Domain events are handled a batch per savepoint; one broken event is isolated, never stalls the rest."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from automations.booking import domain_events
from automations.store.models import DomainEvent, Enrollment
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
