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


def test_wakes_during_a_drain_are_folded_into_it_without_scheduler_warnings(runtime, caplog):
    """Bookings wake the worker while it drains: each wake makes the running drain go round once more; none asks
    APScheduler for a second instance (which it refuses with a WARNING every time)."""
    import logging
    import threading

    from automations.clock import SystemClock

    runtime.clock = SystemClock()
    started, release, rounds = threading.Event(), threading.Event(), []
    real_tick = runtime.tick

    def slow_tick(now=None):
        rounds.append(1)
        if len(rounds) == 1:
            started.set()
            release.wait(5)
        return real_tick(now)

    runtime.tick = slow_tick
    sched = scheduler.background(runtime)
    with caplog.at_level(logging.WARNING, logger="apscheduler"):
        sched.start()
        try:
            runtime.wake()
            assert started.wait(5)
            for _ in range(5):
                runtime.wake()
            # Hold the drain for longer than a tick interval: the next tick must not try to start beside it.
            threading.Event().wait(runtime.settings.tick_seconds * 3)
            release.set()
            deadline = threading.Event()
            for _ in range(100):
                if len(rounds) >= 2:
                    break
                deadline.wait(0.05)
        finally:
            sched.shutdown(wait=True)
    assert len(rounds) >= 2  # the wakes were not lost: the drain went round again
    assert not [r for r in caplog.records if "maximum number of running instances" in r.getMessage()]


def test_the_gather_grows_while_bursts_keep_coming_and_falls_back_after(runtime):
    """Under sustained bookings each round shares its fixed cost with more of them: the pause before the next
    round doubles while rounds keep handling bursts (up to MAX_GATHER_SECONDS) and drops back to
    WAKE_DELAY_SECONDS after a round with at most one event."""
    events_per_round = [5, 8, 12, 20, 30, 1, 4]
    slept: list[float] = []
    ticker = scheduler._Ticker(runtime, sleep=slept.append)

    def tick(now=None):
        events = events_per_round.pop(0)
        if events_per_round:
            ticker.again.set()  # more bookings woke the worker while this round ran
        return {"events": events}

    runtime.tick = tick
    runtime.next_due = lambda: None
    ticker()
    wake, cap = scheduler.WAKE_DELAY_SECONDS, scheduler.MAX_GATHER_SECONDS
    assert slept == [2 * wake, 4 * wake, min(8 * wake, cap), cap, cap, wake]
    assert events_per_round == []


def test_an_idle_tick_only_reads(engine, runtime, clock, world):
    """With nothing due, a tick asks the database one read-only question and takes no write transaction
    (on SQLite no writer lock the API's bookings would queue behind); with a wait coming due it still runs."""
    from sqlalchemy import event

    seen: list[str] = []

    def note(_conn, _cursor, statement, *_rest):
        seen.append(statement.lstrip().split(None, 1)[0].upper() + (" IMMEDIATE" if "IMMEDIATE" in statement else "")
                    + (" FOR UPDATE" if "FOR UPDATE" in statement else ""))

    event.listen(engine, "before_cursor_execute", note)
    try:
        assert sum(runtime.tick().values()) == 0
        writes = [s for s in seen if s.split()[0] in ("INSERT", "UPDATE", "DELETE") or s.endswith(("IMMEDIATE", "FOR UPDATE"))]
        assert writes == [] and seen.count("SELECT") == 1, seen
    finally:
        event.remove(engine, "before_cursor_execute", note)
    with runtime.factory() as s, s.begin():
        publish(s, world, doc({"id": "w", "type": "wait_time_delay", "amount": 90, "unit": "seconds"},
                              {"id": "sms", "type": "send_sms", "body": "hi"}), clock.now())
        book(s, world, clock.now())
    assert runtime.tick()["events"] >= 1
    clock.advance(timedelta(seconds=90))
    done = runtime.tick()
    assert done["enrollments"] >= 1 and done["deliveries"] == 1
    with runtime.factory() as s:
        assert [m.status for m in messages(s)] == ["sent"]
