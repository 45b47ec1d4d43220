"""Availability benchmark: a week of free slots for a busy 10-member round-robin calendar.

Usage (from the repository root)::

    .venv/bin/python bench/availability.py [--db sqlite|postgres] [--appointments 500] [--busy 300] [--runs 20]

Setup: a throw-away database, a location, 10 users in five time zones, a round-robin calendar they all
belong to (weekdays 09:00–17:00, 30-minute slots every 15 minutes, 10-minute buffers), ``--appointments``
appointments spread over the coming week across the members (and two other calendars, so overlaps from
elsewhere count), and ``--busy`` Google busy blocks. Measured: ``availability.slots`` for the coming
week in a fresh session, ``--runs`` times; ``ms`` is the median. Target: < 100 ms on SQLite.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from automations.booking import availability  # noqa: E402
from automations.store.db import make_engine, make_session_factory  # noqa: E402
from automations.store.models import (  # noqa: E402
    Appointment,
    BusyBlock,
    Calendar,
    CalendarMember,
    Contact,
    Location,
    User,
    new_id,
)
from bench.common import setup_logging, temp_database  # noqa: E402

NOW = datetime(2026, 11, 2, 13, 0, tzinfo=UTC)  # a Monday, 08:00 in New York
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Phoenix")
HOURS = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def build(factory, *, appointments: int, busy: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    with factory() as s, s.begin():
        loc = Location(name="Bench", timezone="America/New_York", created_at=NOW)
        s.add(loc)
        s.flush()
        users = [User(location_id=loc.id, first_name=f"Host{i}", timezone=ZONES[i % len(ZONES)], created_at=NOW)
                 for i in range(10)]
        s.add_all(users)
        s.flush()
        contact = Contact(location_id=loc.id, first_name="C", created_at=NOW, updated_at=NOW, tags=[], custom_fields={})
        s.add(contact)
        cals = []
        for name in ("Round robin", "Other A", "Other B"):
            cal = Calendar(location_id=loc.id, name=name, slug=name.lower().replace(" ", "-"), kind="round_robin",
                           timezone="America/New_York", slot_minutes=30, slot_interval_minutes=15,
                           buffer_before_minutes=10, buffer_after_minutes=10, appointments_per_slot=1,
                           availability=HOURS, date_overrides={}, created_at=NOW)
            cal.members = [CalendarMember(user_id=u.id, position=i) for i, u in enumerate(users)]
            cals.append(cal)
        s.add_all(cals)
        s.flush()
        rows = []
        for _ in range(appointments):
            start = NOW + timedelta(minutes=15 * rng.randrange(0, 7 * 24 * 4))
            rows.append({"id": new_id(), "location_id": loc.id, "calendar_id": rng.choice(cals).id,
                         "contact_id": contact.id, "assigned_user_id": rng.choice(users).id, "title": "x",
                         "start_at": start, "end_at": start + timedelta(minutes=30), "timezone": "America/New_York",
                         "status": "confirmed", "notes": "", "is_recurring": False, "rescheduled": False,
                         "record_past": False, "created_at": NOW, "updated_at": NOW})
        s.execute(insert(Appointment), rows)
        blocks = []
        for i in range(busy):
            start = NOW + timedelta(minutes=30 * rng.randrange(0, 7 * 48))
            blocks.append({"id": new_id(), "user_id": rng.choice(users).id, "source": "google",
                           "external_id": f"ev{i}", "start_at": start,
                           "end_at": start + timedelta(minutes=rng.choice((30, 60, 90))), "title": "",
                           "updated_at": NOW})
        s.execute(insert(BusyBlock), blocks)
        return cals[0].id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--appointments", type=int, default=500)
    parser.add_argument("--busy", type=int, default=300)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    setup_logging()
    with temp_database(args.db) as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        cal_id = build(factory, appointments=args.appointments, busy=args.busy)
        timings, count = [], 0
        for _ in range(args.runs + 1):  # the first run warms caches (zoneinfo, statement cache)
            began = time.perf_counter()
            with factory() as s:
                found = availability.slots(s, s.get(Calendar, cal_id), start=NOW, end=NOW + timedelta(days=7), now=NOW)
            timings.append((time.perf_counter() - began) * 1000)
            count = len(found)
        engine.dispose()
    runs = timings[1:]
    print(json.dumps({"db": args.db, "members": 10, "appointments": args.appointments, "busy_blocks": args.busy,
                      "slots": count, "runs": args.runs, "ms": round(statistics.median(runs), 2),
                      "p95_ms": round(sorted(runs)[int(0.95 * (len(runs) - 1))], 2)}))


if __name__ == "__main__":
    main()
