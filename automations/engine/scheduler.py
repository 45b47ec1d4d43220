"""APScheduler 3 jobs that drive a runtime on the real clock.

One job drains all due work (events, meetings, enrollments, deliveries) and schedules its next run
``tick_seconds`` after it ends, and within its window also wakes exactly when the next piece of work comes due;
there is only ever one run pending, so ticks never pile up. A wake (after a booking) while a drain runs is folded into that drain
(it goes round once more) instead of asking APScheduler for a second instance, which it would refuse with a
warning on every tick. A cron job at
00:00 UTC is the hook for daily provider budgets. Nothing is kept in the scheduler: its jobs only
read the database, so a killed worker loses nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from automations.engine.runtime import Runtime

log = logging.getLogger(__name__)


class _Drain:
    """Whether a drain is running, and whether a wake arrived meanwhile (so it goes round once more)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = False
        self.again = False

    def start(self) -> None:
        with self.lock:
            self.running, self.again = True, False

    def woken(self) -> bool:
        """Called when a drain found nothing more: True (and reset) if a wake came in since."""
        with self.lock:
            again, self.again = self.again, False
            return again

    def finish(self) -> None:
        with self.lock:
            self.running = False

    def wake_running(self) -> bool:
        """Fold a wake into the running drain; False when none runs (the caller starts one)."""
        with self.lock:
            if self.running:
                self.again = True
            return self.running


def _safe_tick(runtime: Runtime, drain: _Drain | None = None) -> None:
    """Drain due work; then, if something comes due before the next tick would start, wait for exactly
    that moment and drain again, so a wave due at T starts going out at T, not up to a tick later."""
    drain = drain or _Drain()
    drain.start()
    try:
        _drain(runtime, drain)
    finally:
        drain.finish()


def _drain(runtime: Runtime, drain: _Drain) -> None:
    window_ends = time.monotonic() + runtime.settings.tick_seconds
    try:
        while True:
            runtime.tick()
            if drain.woken():
                continue
            upcoming = runtime.next_due()
            if upcoming is None:
                return
            wait = (upcoming - runtime.clock.now()).total_seconds()
            # Already due yet not drained means another worker holds it: leave it to the next tick.
            if wait <= 0 or time.monotonic() + wait >= window_ends:
                return
            time.sleep(wait)
    except Exception:  # the next tick retries; a transient database error must not kill the worker
        log.exception("worker tick failed")


def _midnight(runtime: Runtime) -> None:
    for hook in runtime.midnight_hooks:
        try:
            hook(runtime.clock.now())
        except Exception:  # one failing hook must not skip the others
            log.exception("midnight hook %r failed", hook)


def configure(scheduler, runtime: Runtime):
    drain = _Drain()
    every = timedelta(seconds=runtime.settings.tick_seconds)

    def schedule(at: datetime) -> None:
        scheduler.add_job(run, "date", run_date=at, id="tick", replace_existing=True, misfire_grace_time=None)

    def run() -> None:
        # One pending run at a time, scheduled when the last one ends: a long drain is never overtaken by its
        # own next tick (an interval job would be refused, with a warning, on every tick while it runs).
        try:
            _safe_tick(runtime, drain)
        finally:
            if scheduler.running:
                schedule(datetime.now(UTC) + every)

    def wake() -> None:
        if drain.wake_running():
            return
        job = scheduler.get_job("tick")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    runtime.wake_hook = wake
    schedule(datetime.now(UTC))
    scheduler.add_job(_midnight, "cron", args=[runtime], hour=0, minute=0, timezone="UTC",
                      id="midnight-utc", max_instances=1, coalesce=True)
    return scheduler


def background(runtime: Runtime) -> BackgroundScheduler:
    return configure(BackgroundScheduler(timezone="UTC"), runtime)


def blocking(runtime: Runtime) -> BlockingScheduler:
    return configure(BlockingScheduler(timezone="UTC"), runtime)
