"""APScheduler 3 jobs that drive a runtime on the real clock.

One interval job drains all due work (events, meetings, enrollments, deliveries) every
``tick_seconds``, and within its window also wakes exactly when the next piece of work comes due; only one
tick runs at a time, and a wake during a tick becomes one more round of it (``_Ticker``). A cron job at
00:00 UTC is the hook for daily provider budgets. Nothing is kept in the scheduler: its jobs only
read the database, so a killed worker loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from automations.engine import retention
from automations.engine.runtime import Runtime

log = logging.getLogger(__name__)

#: A wake (a booking, an inbound reply) runs a tick this much later, so that a burst of bookings is
#: handled by one tick rather than one tick (and one round of write transactions) each.
WAKE_DELAY_SECONDS = 0.05
#: While wakes keep coming (bookings arriving faster than rounds end), each round that handled a burst
#: doubles the gather, up to this; a round with at most one event drops it back to WAKE_DELAY_SECONDS. A
#: round's fixed cost (probe, claim, commit) is then shared by many bookings instead of a few, at the price
#: of confirmations going out up to this much later under sustained load.
MAX_GATHER_SECONDS = 0.4


class _Ticker:
    """The tick job. Only one runs at a time; a wake or a timer firing while it runs asks it for one
    more round instead of starting a second instance, which APScheduler would refuse with a warning
    (one per booking under load, one per timer during a long drain)."""

    def __init__(self, runtime: Runtime, sleep: Callable[[float], None] = time.sleep) -> None:
        self.runtime = runtime
        self.sleep = sleep  # injectable: the gather is the only wait on the real clock here
        self.running = threading.Lock()
        self.again = threading.Event()
        #: A run was asked of the scheduler and has not started yet: further wakes need not ask again.
        self.requested = False

    def __call__(self) -> None:
        if not self.running.acquire(blocking=False):
            self.again.set()
            return
        self.requested = False
        gather = WAKE_DELAY_SECONDS
        try:
            while True:
                self.again.clear()
                events = self._drain()
                if not self.again.is_set():
                    return
                gather = min(gather * 2, MAX_GATHER_SECONDS) if events > 1 else WAKE_DELAY_SECONDS
                self.sleep(gather)  # gather the burst that woke us
        finally:
            self.running.release()

    def busy(self) -> bool:
        """True while a tick runs; a wake then only needs to ask for another round."""
        if self.running.locked():
            self.again.set()
            return True
        return False

    def _drain(self) -> int:
        """Drain due work; then, if something comes due before the next tick would start, wait for exactly
        that moment (or a wake) and drain again, so a wave due at T starts going out at T, not up to a tick later.
        Returns how many domain events it handled."""
        runtime = self.runtime
        window_ends = time.monotonic() + runtime.settings.tick_seconds
        events = 0
        try:
            while True:
                started = time.perf_counter()
                done = runtime.tick()
                events += done.get("events", 0)
                if done.get("enrollments") or done.get("deliveries") or done.get("meetings"):
                    log.info("tick: %s in %.3f s", ", ".join(f"{v} {k}" for k, v in done.items() if v),
                             time.perf_counter() - started)
                upcoming = runtime.next_due()
                if upcoming is None:
                    return events
                wait = (upcoming - runtime.clock.now()).total_seconds()
                # Already due yet not drained means another worker holds it: leave it to the next tick.
                if wait <= 0 or time.monotonic() + wait >= window_ends:
                    return events
                if self.again.wait(wait):
                    return events  # woken: the caller runs another round at once
        except Exception:  # the next tick retries; a transient database error must not kill the worker
            log.exception("worker tick failed")
        return events


def _safe_tick(runtime: Runtime) -> None:
    """One tick on this thread (kept for callers that drive a runtime without a scheduler)."""
    _Ticker(runtime)()


def _midnight(runtime: Runtime) -> None:
    for hook in runtime.midnight_hooks:
        try:
            hook(runtime.clock.now())
        except Exception:  # one failing hook must not skip the others
            log.exception("midnight hook %r failed", hook)


def _retention(runtime: Runtime) -> None:
    try:
        retention.prune(runtime.factory, runtime.clock.now(), days=runtime.settings.retention_days,
                        batch=runtime.settings.retention_batch)
    except Exception:  # tomorrow's run carries on where this one stopped
        log.exception("retention run failed")


def configure(scheduler, runtime: Runtime):
    ticker = _Ticker(runtime)

    def wake() -> None:
        if ticker.busy() or ticker.requested:
            return
        ticker.requested = True
        job = scheduler.get_job("tick")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC) + timedelta(seconds=WAKE_DELAY_SECONDS))

    runtime.wake_hook = wake
    # Up to three instances may be started (timer, wakes); all but one return at once (see _Ticker).
    scheduler.add_job(ticker, "interval", seconds=runtime.settings.tick_seconds,
                      id="tick", max_instances=3, coalesce=True, misfire_grace_time=None)
    scheduler.add_job(_midnight, "cron", args=[runtime], hour=0, minute=0, timezone="UTC",
                      id="midnight-utc", max_instances=1, coalesce=True)
    scheduler.add_job(_retention, "cron", args=[runtime], hour=3, minute=0, timezone="UTC",
                      id="retention", max_instances=1, coalesce=True)
    return scheduler


def background(runtime: Runtime) -> BackgroundScheduler:
    return configure(BackgroundScheduler(timezone="UTC"), runtime)


def blocking(runtime: Runtime) -> BlockingScheduler:
    return configure(BlockingScheduler(timezone="UTC"), runtime)
