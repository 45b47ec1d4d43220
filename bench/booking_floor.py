"""The booking floor: what the server stack does with a booking's SQL and nothing else, served and driven
exactly as ``bench/api_enqueue.py`` serves and drives Punctual.

Usage (from the repository root)::

    .venv/bin/python bench/booking_floor.py --n 10000 --concurrency 32 [--db postgres] [--threads 1]

Same world (``api_enqueue.prepare``), same server (gunicorn with ``automations.serving``'s options and
defaults: 2 web processes × 2 threads, a socket each), same clients (``api_enqueue.post_bookings``) and
the same statements per booking, written as cached Core statements with no ORM and no domain layer:

- authentication: ``locations.key_for`` on a read-only connection (Punctual's own);
- reads: the location, the calendar and its members (one SELECT each);
- one write transaction on the SQLite writer lock (``store.db``'s engine; on PostgreSQL the calendar row's
  lock, as ``appointments._lock`` takes it): INSERT the contact, the slot's busy time (``availability``'s
  own query), INSERT the appointment, the domain event and the audit line;
- a JSON answer with the appointment's fields.

No validation beyond the fields it reads, no worker, no rules but "the slot has room": a floor, not a
product. ``punctual_over_floor`` is not printed here: run ``api_enqueue.py`` beside it, in the same hour.
Prints one JSON object; logs go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flask import Flask, request  # noqa: E402
from sqlalchemy import bindparam, insert, select  # noqa: E402

from automations import serving  # noqa: E402
from automations.booking import availability, domain_events, locations  # noqa: E402
from automations.serving import DEFAULT_THREADS, DEFAULT_WORKERS, gunicorn_options  # noqa: E402
from automations.settings import Settings  # noqa: E402
from automations.store import audit  # noqa: E402
from automations.store.db import (  # noqa: E402
    is_postgres,
    make_engine,
    make_session_factory,
    read_only_connection,
    table_of,
)
from automations.store.models import Appointment, Calendar, CalendarMember, Contact, Location, new_id  # noqa: E402
from bench.api_enqueue import load_avg, post_bookings, prepare, served  # noqa: E402
from bench.common import percentile, setup_logging, temp_database, yardstick_us  # noqa: E402

_LOCATION = select(table_of(Location)).where(Location.id == bindparam("id"))
_CALENDAR = select(table_of(Calendar)).where(Calendar.id == bindparam("id"))
_MEMBERS = select(table_of(CalendarMember)).where(CalendarMember.calendar_id == bindparam("id"))
_LOCK_CALENDAR = select(Calendar.id).where(Calendar.id == bindparam("id")).with_for_update(key_share=True)
_CONTACT = insert(table_of(Contact))
_APPOINTMENT = insert(table_of(Appointment))


def floor_app(url: str) -> Flask:
    """The floor's one route: the booking's statements, nothing else."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    postgres = is_postgres(engine)
    app = Flask(__name__)
    app.get("/healthz")(lambda: "ok")

    @app.post("/api/v1/appointments")
    def book() -> Any:
        key = request.headers.get("Authorization", "").partition(" ")[2]
        with read_only_connection(factory) as conn:
            row = locations.key_for(conn, key)
            loc = conn.execute(_LOCATION, {"id": row.location_id}).one()
            data = request.get_json()
            cal = conn.execute(_CALENDAR, {"id": data["calendar_id"]}).one()
            members = conn.execute(_MEMBERS, {"id": cal.id}).all()
        start = datetime.fromisoformat(data["start_time"])
        end = start + timedelta(minutes=cal.slot_minutes)
        now = datetime.now(UTC)
        appt = {"id": new_id(), "location_id": loc.id, "calendar_id": cal.id, "assigned_user_id": members[0].user_id,
                "title": data.get("title", ""), "start_at": start, "end_at": end, "timezone": cal.timezone,
                "status": "confirmed", "notes": "", "created_at": now, "updated_at": now}
        with engine.begin() as conn:
            if postgres:  # as appointments._lock: bookings of one calendar take turns on its row
                conn.execute(_LOCK_CALENDAR, {"id": cal.id})
            contact_id = new_id()
            conn.execute(_CONTACT, {**data["contact"], "id": contact_id, "location_id": loc.id, "tags": [],
                                    "custom_fields": {}, "created_at": now, "updated_at": now})
            busy = conn.execute(availability._busy_query(True, False, False), {
                "start": start, "end": end, "since": start - availability.MAX_APPOINTMENT,
                "user_ids": [m.user_id for m in members], "calendar_id": cal.id, "resource": ""}).all()
            if sum(n for *_, n in busy) >= cal.appointments_per_slot:
                return {"error": "full"}, 409
            conn.execute(_APPOINTMENT, {**appt, "contact_id": contact_id})
            conn.execute(domain_events._INSERT, {"location_id": loc.id, "kind": "appointment.booked",
                                                 "appointment_id": appt["id"], "contact_id": contact_id,
                                                 "payload": {"status": "confirmed"}, "created_at": now})
            conn.execute(audit._INSERT, {"id": new_id(), "location_id": loc.id, "actor_kind": "api_key",
                                         "actor_id": row.id, "action": "appointments.book",
                                         "entity_type": "appointments", "entity_id": appt["id"], "at": now,
                                         "summary": "Book an appointment (appointments +1, contacts +1)"})
        return {**appt, "contact_id": contact_id, "start_at": start.isoformat(), "end_at": end.isoformat(),
                "created_at": now.isoformat(), "updated_at": now.isoformat()}, 201

    return app


class _Floor(serving._App):
    """The production server's own gunicorn application (``automations.serving``), loading the floor."""

    def load(self) -> Flask:
        return floor_app(self.settings.database_url)


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    calendar_ids = prepare(url, args.n, args.per_calendar, now)
    with served(url, web_processes=args.web_processes, threads=args.threads, worker=False,
                command=[sys.executable, __file__]) as srv:
        load_before = load_avg()
        cpu0 = srv.cpu_s()
        results, wall = post_bookings(srv.port, n=args.n, concurrency=args.concurrency, calendar_ids=calendar_ids,
                                      start_at=now + timedelta(hours=3))
        cpu = srv.cpu_s() - cpu0
    ok = args.n - results.errors
    return {"n": args.n, "concurrency": args.concurrency, "db": args.db, "web_processes": args.web_processes,
            "threads": args.threads, "bookings_per_s": round(ok / wall, 1),
            "p50_ms": round(percentile(results.latencies_ms, 50) or 0, 1),
            "p99_ms": round(percentile(results.latencies_ms, 99) or 0, 1),
            "cpu_ms_per_booking": round(cpu * 1000 / max(ok, 1), 2), "errors": results.errors,
            "first_error": results.first_error, "wall_s": round(wall, 2), "load_before": load_before,
            "load_after": load_avg()}


def serve(argv: list[str]) -> None:
    """The server process ``served`` starts: ``booking_floor.py serve --port P --workers N --threads T``,
    on ``DATABASE_URL``."""
    p = argparse.ArgumentParser(prog="booking_floor.py serve")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    p.add_argument("--no-worker", action="store_true")  # there is none
    args = p.parse_args(argv)
    _Floor(gunicorn_options("127.0.0.1", args.port, args.workers, args.threads), Settings.from_env(), None).run()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1:])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--per-calendar", type=int, default=1000, help="appointments per calendar (one slot each)")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--web-processes", type=int, default=DEFAULT_WORKERS, help="as `automations serve --workers`")
    p.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="as `automations serve --threads`")
    args = p.parse_args(argv)
    setup_logging()
    before = yardstick_us()
    with temp_database(args.db) as url:
        result = run(url, args)
    print(json.dumps({**result, "yardstick_us": [before, yardstick_us()]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
