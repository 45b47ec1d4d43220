"""Domain events are handled a batch per savepoint; one broken event is isolated, never stalls the rest."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from automations.booking import domain_events
from automations.store.models import DomainEvent
from automations.store.states import EventKind
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
