"""What a batch writes goes out together: counted in statements, so a per-row write sneaking back in (a
flush per event, a second UPDATE per message) fails here rather than only in a benchmark."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import event, select

from automations.engine import events
from automations.store.models import Enrollment, EnrollmentLog, Message
from automations.store.states import EnrollmentState, MessageStatus
from tests.factories import book, doc, publish


@contextmanager
def _heard(engine, name: str) -> Iterator[list[tuple]]:
    """The arguments of every ``name`` engine event (``before_cursor_execute``, the pool's ``checkout``) in the block."""
    seen: list[tuple] = []

    def note(*args) -> None:
        seen.append(args)

    event.listen(engine, name, note)
    try:
        yield seen
    finally:
        event.remove(engine, name, note)


@contextmanager
def _statements(engine) -> Iterator[list[str]]:
    with _heard(engine, "before_cursor_execute") as heard:
        statements: list[str] = []
        yield statements
    statements.extend(args[2] for args in heard)  # (conn, cursor, statement, ...)


def _statements_to_handle(factory, engine, clock, world, bookings: int) -> int:
    """Statements run while one batch of ``bookings`` booked events is handled (each enrolls and waits)."""
    with factory() as s, s.begin():
        for i in range(bookings):
            book(s, world, clock.now(), start=clock.now() + timedelta(days=3, hours=i))
    with _statements(engine) as seen, factory() as s, s.begin():
        assert events.process_batch(s, clock.now(), limit=100) == bookings
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


def test_a_delivery_batch_claims_and_prepares_each_message_in_one_update(factory, engine, clock, world, runtime):
    """The claim's lease and what preparing sets (attempts, rendered text) are one UPDATE per message at the
    claim's commit, not one for the lease and a second for the rest."""
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "sms", "type": "send_sms", "body": "hi {{contact.first_name}}"}), clock.now())
        for i in range(4):
            book(s, world, clock.now(), start=clock.now() + timedelta(days=3, hours=i))
    runtime.run_events(clock.now())
    runtime.run_enrollments(clock.now())
    with _statements(engine) as seen:
        assert runtime.run_deliveries(clock.now()) == 4
    # (Each send's own lease extension and its outcome are UPDATEs of their own, later: not counted here.)
    claim = [q for q in seen if q.startswith("UPDATE messages SET") and
             ("attempts" in q or q.startswith("UPDATE messages SET lease_owner"))]
    assert len(claim) == 1 and "lease_owner" in claim[0] and "attempts" in claim[0]
    with factory() as s:
        assert all(m.status == MessageStatus.SENT for m in s.scalars(select(Message)))


def _checkouts_to_deliver(factory, engine, clock, world, runtime, texts: int) -> int:
    """Connections taken from the pool while one delivery batch of ``texts`` texts goes out."""
    with factory() as s, s.begin():
        for i in range(texts):
            book(s, world, clock.now(), start=clock.now() + timedelta(days=5, hours=i))
    runtime.run_events(clock.now())
    runtime.run_enrollments(clock.now())
    with _heard(engine, "checkout") as checkouts:
        assert runtime.run_deliveries(clock.now()) == texts
    return len(checkouts)


def test_a_lane_sends_on_one_connection_however_long_it_is(factory, engine, clock, world, runtime):
    """Each send's lease extension is a transaction on the lane's own connection, not a pool checkout each."""
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "sms", "type": "send_sms", "body": "hi"}), clock.now())
    few = _checkouts_to_deliver(factory, engine, clock, world, runtime, 2)
    many = _checkouts_to_deliver(factory, engine, clock, world, runtime, 7)
    assert many == few
