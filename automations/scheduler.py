"""APScheduler 3 jobs that drive a runtime on the real clock.

One interval job drains all due work (events, meetings, enrollments, deliveries) every
``tick_seconds``; ``max_instances=1`` and ``coalesce`` stop ticks from piling up. A cron job at
00:00 UTC is the hook for daily provider budgets. Nothing is kept in the scheduler: its jobs only
read the database, so a killed worker loses nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from automations.runtime import Runtime

log = logging.getLogger(__name__)


def _safe_tick(runtime: Runtime) -> None:
    try:
        runtime.tick(runtime.clock.now())
    except Exception:  # the next tick retries; a transient database error must not kill the worker
        log.exception("worker tick failed")


def _midnight(runtime: Runtime) -> None:
    for hook in runtime.midnight_hooks:
        hook(runtime.clock.now())


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
