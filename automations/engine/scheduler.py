"""APScheduler 3 jobs that drive a runtime on the real clock.

One interval job drains all due work (events, meetings, enrollments, deliveries) every
``tick_seconds``, and within its window also wakes exactly when the next piece of work comes due; ``max_instances=1`` and ``coalesce`` stop ticks from piling up. A cron job at
00:00 UTC is the hook for daily provider budgets. Nothing is kept in the scheduler: its jobs only
read the database, so a killed worker loses nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from automations.engine.runtime import Runtime

log = logging.getLogger(__name__)


def _safe_tick(runtime: Runtime) -> None:
    """Drain due work; then, if something comes due before the next tick would start, wait for exactly
    that moment and drain again, so a wave due at T starts going out at T, not up to a tick later."""
    window_ends = time.monotonic() + runtime.settings.tick_seconds
    try:
        while True:
            runtime.tick()
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
    def wake() -> None:
        job = scheduler.get_job("tick")
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))

    runtime.wake_hook = wake
    scheduler.add_job(_safe_tick, "interval", args=[runtime], seconds=runtime.settings.tick_seconds,
                      id="tick", max_instances=1, coalesce=True, misfire_grace_time=None)
    scheduler.add_job(_midnight, "cron", args=[runtime], hour=0, minute=0, timezone="UTC",
                      id="midnight-utc", max_instances=1, coalesce=True)
    return scheduler


def background(runtime: Runtime) -> BackgroundScheduler:
    return configure(BackgroundScheduler(timezone="UTC"), runtime)


def blocking(runtime: Runtime) -> BlockingScheduler:
    return configure(BlockingScheduler(timezone="UTC"), runtime)
