"""Idle benchmark: what a worker costs when a large backlog of enrollments waits on future times.

Usage (from the repository root)::

    .venv/bin/python bench/idle.py --waiting 100000 [--db sqlite|postgres] [--sent 0]

Setup: a throw-away database with a location, two users, a calendar, 1,000 contacts and the
published reminder workflow (the one bench/wave.py uses), then ``--waiting`` appointments and their
enrollments, parked on the workflow's ``wait_appointment_time`` step until 1 hour before starts
spread over the next 90 days, written in bulk through SQLAlchemy Core into the real schema: the
rows a booking would have left (appointment, processed ``appointment.booked`` event, enrollment on
the published version, its ``enrolled`` and ``waiting`` log lines). ``--sent`` adds that many
already-sent messages as outbox history.

Measured: ``Runtime.tick(now)`` on the real clock when nothing is due, ``--ticks`` times after one
warm-up tick (median and p95, and each part of the tick), and the process's peak RSS, which
includes the setup and so is an upper bound for a worker. Then, with the backlog in place, the cost
of one booking and of the tick that handles its event (``--bookings`` times).

Prints one JSON object on stdout (keys in bench/README.md); logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

import actions  # noqa: E402, F401  (complete the registries first, as the CLI does)
import triggers  # noqa: E402, F401
from automations.booking import appointments  # noqa: E402
from automations.clock import SystemClock  # noqa: E402
from automations.engine import retention  # noqa: E402
from automations.engine.runtime import Runtime  # noqa: E402
from automations.settings import Settings  # noqa: E402
from automations.store.db import make_engine, make_session_factory  # noqa: E402
from automations.store.models import (  # noqa: E402
    Appointment,
    DomainEvent,
    Enrollment,
    EnrollmentLog,
    Location,
    Message,
    new_id,
)
from bench.common import (  # noqa: E402
    BenchWorld,
    make_bench_world,
    peak_rss_mb,
    percentile,
    publish_document,
    reminder_document,
    setup_logging,
    temp_database,
    yardstick_us,
)

log = logging.getLogger("bench.idle")
CHUNK = 5_000
HORIZON = timedelta(days=90)


def _chunks(total: int, size: int = CHUNK) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(total, start + size))


def populate(
    engine, world: BenchWorld, *, workflow_id: str, version_id: str, waiting: int, sent: int, now: datetime
) -> None:
    """Bulk-insert ``waiting`` appointments with their waiting enrollments (and ``sent`` sent messages)."""
    users, cals, people = world.user_ids, world.calendar_ids, world.contact_ids
    step_ms = HORIZON.total_seconds() * 1000 / max(1, waiting)
    for rows in _chunks(waiting):
        appts, events, enrolls, logs = [], [], [], []
        for i in rows:
            appt_id, enr_id = new_id(), new_id()
            start = (now + timedelta(days=1, milliseconds=int(i * step_ms))).replace(microsecond=0)
            contact = people[i % len(people)]
            appts.append(
                {
                    "id": appt_id,
                    "location_id": world.location_id,
                    "calendar_id": cals[i % len(cals)],
                    "contact_id": contact,
                    "assigned_user_id": users[i % 2],
                    "title": "Consultation",
                    "start_at": start,
                    "end_at": start + timedelta(minutes=30),
                    "timezone": "America/New_York",
                    "status": "confirmed",
                    "notes": "",
                    "is_recurring": False,
                    "rescheduled": False,
                    "static_location": f"https://meet.example.com/{'alice' if i % 2 == 0 else 'bob'}",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            events.append(
                {
                    "location_id": world.location_id,
                    "kind": "appointment.booked",
                    "appointment_id": appt_id,
                    "contact_id": contact,
                    "payload": {"status": "confirmed", "modified_by": "api"},
                    "created_at": now,
                    "processed_at": now,
                }
            )
            wake = start - timedelta(hours=1)
            enrolls.append(
                {
                    "id": enr_id,
                    "location_id": world.location_id,
                    "workflow_id": workflow_id,
                    "version_id": version_id,
                    "appointment_id": appt_id,
                    "contact_id": contact,
                    "event_id": f"bench-{i}",
                    "trigger_status": "confirmed",
                    "state": "waiting",
                    "live": True,
                    "step_id": "wait",
                    "step_seq": 1,
                    "wake_at": wake,
                    "wait_kind": "appointment_time",
                    "skip_outbound": False,
                    "rescheduled": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            logs += [
                {
                    "enrollment_id": enr_id,
                    "step_seq": 0,
                    "step_id": None,
                    "step_type": None,
                    "outcome": "enrolled",
                    "reason": "trigger appointment_status: appointment booked (confirmed)",
                    "detail": {"version": 1},
                    "at": now,
                },
                {
                    "enrollment_id": enr_id,
                    "step_seq": 0,
                    "step_id": "wait",
                    "step_type": "wait_appointment_time",
                    "outcome": "waiting",
                    "reason": f"waiting until {wake.isoformat()}",
                    "detail": {},
                    "at": now,
                },
            ]
        with engine.begin() as conn:
            conn.execute(insert(Appointment), appts)
            conn.execute(insert(DomainEvent), events)
            conn.execute(insert(Enrollment), enrolls)
            conn.execute(insert(EnrollmentLog), logs)
    for rows in _chunks(sent):
        with engine.begin() as conn:
            conn.execute(
                insert(Message),
                [
                    {
                        "id": new_id(),
                        "location_id": world.location_id,
                        "idempotency_key": f"history:{i}",
                        "step_id": "sms",
                        "channel": "sms",
                        "audience": "contact",
                        "contact_id": people[i % len(people)],
                        "to_address": "+12125550000",
                        "outbound": True,
                        "template": {"body": "Hi"},
                        "body": "Hi",
                        "needs_meeting_link": False,
                        "status": "sent",
                        "provider": "capture",
                        "provider_id": f"capture-{i}",
                        "attempts": 1,
                        "due_at": now - timedelta(days=1),
                        "created_at": now - timedelta(days=1),
                        "sent_at": now - timedelta(days=1),
                    }
                    for i in rows
                ],
            )


def populate_finished(engine, world: BenchWorld, *, workflow_id: str, version_id: str, finished: int,
                      now: datetime, age: timedelta) -> None:
    """Bulk-insert ``finished`` past appointments whose enrollments completed ``age`` ago, each with what
    the reminder workflow leaves behind: a processed event, two log rows, a sent text and a sent email."""
    users, cals, people = world.user_ids, world.calendar_ids, world.contact_ids
    done_at = (now - age).replace(microsecond=0)
    for rows in _chunks(finished):
        appts, events, enrolls, logs, msgs = [], [], [], [], []
        for i in rows:
            appt_id, enr_id = new_id(), new_id()
            start = done_at + timedelta(hours=1)
            contact = people[i % len(people)]
            appts.append({
                "id": appt_id, "location_id": world.location_id, "calendar_id": cals[i % len(cals)],
                "contact_id": contact, "assigned_user_id": users[i % 2], "title": "Past visit", "start_at": start,
                "end_at": start + timedelta(minutes=30), "timezone": "America/New_York", "status": "confirmed",
                "notes": "", "is_recurring": False, "rescheduled": False, "static_location": "https://meet.example.com/a",
                "created_at": done_at - timedelta(days=2), "updated_at": done_at,
            })
            events.append({
                "location_id": world.location_id, "kind": "appointment.booked", "appointment_id": appt_id,
                "contact_id": contact, "payload": {"status": "confirmed", "modified_by": "api"},
                "created_at": done_at - timedelta(days=2), "processed_at": done_at - timedelta(days=2),
            })
            enrolls.append({
                "id": enr_id, "location_id": world.location_id, "workflow_id": workflow_id, "version_id": version_id,
                "appointment_id": appt_id, "contact_id": contact, "event_id": f"past-{i}", "trigger_status": "confirmed",
                "state": "completed", "live": False, "step_id": None, "step_seq": 3, "wake_at": None, "wait_kind": None,
                "skip_outbound": False, "rescheduled": False, "created_at": done_at - timedelta(days=2),
                "updated_at": done_at, "finished_at": done_at,
            })
            for seq, (step, outcome) in enumerate((("sms", "sent"), ("email", "sent"))):
                logs.append({"enrollment_id": enr_id, "step_seq": seq + 1, "step_id": step, "step_type": f"send_{step}",
                             "outcome": outcome, "reason": "queued", "detail": {}, "at": done_at})
                msgs.append({
                    "id": new_id(), "location_id": world.location_id, "idempotency_key": f"past:{i}:{step}",
                    "enrollment_id": enr_id, "appointment_id": appt_id, "step_id": step, "channel": step,
                    "audience": "contact", "contact_id": contact,
                    "to_address": "+12125550000" if step == "sms" else "past@example.com", "outbound": True,
                    "template": {"body": "Hi"}, "body": "Hi", "needs_meeting_link": False, "status": "sent",
                    "provider": "capture", "provider_id": f"capture-past-{i}-{step}", "attempts": 1,
                    "due_at": done_at, "created_at": done_at - timedelta(days=2), "sent_at": done_at,
                })
        with engine.begin() as conn:
            conn.execute(insert(Appointment), appts)
            conn.execute(insert(DomainEvent), events)
            conn.execute(insert(Enrollment), enrolls)
            conn.execute(insert(EnrollmentLog), logs)
            conn.execute(insert(Message), msgs)


class PartTimer:
    """Times each kind of work inside ``Runtime.tick`` (the runtime's own methods, wrapped)."""

    PARTS = ("run_events", "run_meetings", "run_enrollments", "run_deliveries")

    def __init__(self, runtime: Runtime) -> None:
        self.samples: dict[str, list[float]] = {p: [] for p in self.PARTS}
        for part in self.PARTS:
            setattr(runtime, part, self._wrap(part, getattr(runtime, part)))

    def _wrap(self, part: str, method):
        def timed(now: datetime) -> int:
            t0 = time.perf_counter()
            try:
                return method(now)
            finally:
                self.samples[part].append((time.perf_counter() - t0) * 1000)

        return timed


def one_bookings(
    factory, runtime: Runtime, world: BenchWorld, *, count: int
) -> tuple[list[float], list[float]]:
    """With the backlog in place, book ``count`` appointments one at a time (``appointments.book``, one
    transaction each) and time the tick that handles each one's event (enrolls it, runs it to its wait).
    Returns (booking ms, event tick ms)."""
    book_ms, event_ms = [], []
    for i in range(count):
        now = runtime.clock.now()
        start = (now + HORIZON + timedelta(days=2, minutes=30 * i)).replace(microsecond=0)
        t0 = time.perf_counter()
        with factory() as session, session.begin():
            loc = session.get(Location, world.location_id)
            appointments.book(
                session,
                location=loc,
                calendar_id=world.calendar_ids[0],
                contact_id=world.contact_ids[i % len(world.contact_ids)],
                start_at=start,
                now=now,
            )
        t1 = time.perf_counter()
        done = runtime.tick(runtime.clock.now())
        t2 = time.perf_counter()
        if done["events"] != 1 or done["enrollments"]:
            log.warning("booking %d: unexpected tick work %s", i, done)
        book_ms.append((t1 - t0) * 1000)
        event_ms.append((t2 - t1) * 1000)
    return book_ms, event_ms


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = make_engine(url)
    factory = make_session_factory(engine)
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = time.perf_counter()
    with factory() as session, session.begin():
        world = make_bench_world(session, now, calendars=1, per_slot=args.waiting, contact_count=1000)
        workflow_id, version_id = publish_document(session, world.location_id, reminder_document(), now)
    populate(
        engine,
        world,
        workflow_id=workflow_id,
        version_id=version_id,
        waiting=args.waiting,
        sent=args.sent,
        now=now,
    )
    if args.finished:
        populate_finished(engine, world, workflow_id=workflow_id, version_id=version_id, finished=args.finished,
                          now=now, age=timedelta(days=args.finished_age_days))
    if args.analyze:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    setup_s = time.perf_counter() - t0
    with factory() as session:
        waiting = session.scalar(
            select(func.count()).select_from(Enrollment).where(Enrollment.state == "waiting")
        )
    log.info("%d enrollments waiting (setup %.1fs)", waiting, setup_s)

    runtime = Runtime(factory, clock=SystemClock(), settings=Settings(database_url=url), owner="bench-idle")
    timer = PartTimer(runtime)
    runtime.tick(runtime.clock.now())  # warm-up: connections, statement caches
    for samples in timer.samples.values():
        samples.clear()
    ticks, work = [], 0
    for _ in range(args.ticks):
        start = time.perf_counter()
        done = runtime.tick(runtime.clock.now())
        ticks.append((time.perf_counter() - start) * 1000)
        work += sum(done.values())
    if work:
        log.warning("the idle ticks found %d units of work: not idle", work)
    pruned: dict[str, Any] = {}
    if args.prune:
        started = time.perf_counter()
        pruned = retention.prune(factory, now, days=Settings.retention_days, batch=Settings.retention_batch)
        pruned["prune_s"] = round(time.perf_counter() - started, 2)
        after = []
        for _ in range(args.ticks):
            start = time.perf_counter()
            runtime.tick(runtime.clock.now())
            after.append((time.perf_counter() - start) * 1000)
        pruned["tick_ms_after_prune"] = round(statistics.median(after), 2)
    book_ms, event_ms = one_bookings(factory, runtime, world, count=args.bookings)
    return {
        "waiting": waiting,
        "db": args.db,
        "sent_history": args.sent,
        "finished": args.finished,
        "retention": pruned or None,
        "ticks": len(ticks),
        "tick_ms": round(statistics.median(ticks), 2),
        "tick_ms_p95": round(percentile(ticks, 95), 2),
        "tick_ms_max": round(max(ticks), 2),
        "parts_ms": {
            p.removeprefix("run_"): round(statistics.median(s), 2) for p, s in timer.samples.items()
            if s  # a kind of work the due-work probe never ran in these ticks has no time
        },
        "work_found": work,
        "book_ms": round(statistics.median(book_ms), 2) if book_ms else None,
        "event_tick_ms": round(statistics.median(event_ms), 2) if event_ms else None,
        "peak_rss_mb": peak_rss_mb(),
        "setup_s": round(setup_s, 1),
        "analyzed": args.analyze,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--waiting", type=int, default=100_000, help="enrollments waiting on future times")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--ticks", type=int, default=20, help="idle ticks to time (after one warm-up)")
    p.add_argument("--finished", type=int, default=0,
                   help="finished enrollments (with their past appointment, event, logs and two sent messages) to add")
    p.add_argument("--finished-age-days", type=float, default=120, help="how long ago those finished")
    p.add_argument("--prune", action="store_true",
                   help="then run retention (the default 90 days) and time it, and the idle tick after it")
    p.add_argument("--sent", type=int, default=0, help="already-sent messages to add as outbox history")
    p.add_argument(
        "--bookings",
        type=int,
        default=5,
        help="then book this many appointments and time the tick that handles each event",
    )
    p.add_argument("--analyze", action="store_true", help="run ANALYZE after the setup (planner statistics)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    before = yardstick_us()
    with temp_database(args.db) as url:
        result = run(url, args)
    print(json.dumps({**result, "yardstick_us": [before, yardstick_us()]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
