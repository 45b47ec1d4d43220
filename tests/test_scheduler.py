"""The scheduler's tick: drains due work, and knows when the next piece of work comes due."""

from __future__ import annotations

from datetime import timedelta

from automations.engine import scheduler
from tests.factories import book, doc, messages, publish


def test_next_due_follows_the_earliest_work(factory, runtime, clock, world):
    assert runtime.next_due() is None
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "w", "type": "wait_time_delay", "amount": 90, "unit": "seconds"},
                              {"id": "sms", "type": "send_sms", "body": "hi"}), clock.now())
        book(s, world, clock.now())
    assert runtime.next_due() == clock.now()  # an unhandled event is due now
    runtime.tick()
    assert runtime.next_due() == clock.now() + timedelta(seconds=90)


def test_safe_tick_drains_and_survives_errors(factory, runtime, clock, world):
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "sms", "type": "send_sms", "body": "hi"}), clock.now())
        book(s, world, clock.now())
    scheduler._safe_tick(runtime)
    with factory() as s:
        assert [m.status for m in messages(s)] == ["sent"]

    def broken(*_a, **_k):
        raise RuntimeError("database went away")

    runtime.run_events = broken
    scheduler._safe_tick(runtime)  # logged, not raised: the next tick retries


def test_midnight_hooks_all_run_even_if_one_fails(runtime):
    seen = []
    runtime.midnight_hooks[:] = [lambda now: 1 / 0, lambda now: seen.append(now)]
    scheduler._midnight(runtime)
    assert seen == [runtime.clock.now()]
