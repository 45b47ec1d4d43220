"""Shared plumbing for the benchmarks: throw-away databases, a small world of location, users,
calendars and contacts, the reminder workflow, percentiles and peak RSS.

Everything here goes through the engine's public modules (``automations.*``); nothing is mocked
except the outside world, which is the capture outbox (as in a deployment with no credentials).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import resource
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

import actions  # noqa: F401  (complete the step registry)
import triggers  # noqa: F401  (complete the trigger registry)
from automations.booking import contacts
from automations.documents import workflows
from automations.store import migrate
from automations.store.db import make_engine
from automations.store.models import Calendar, CalendarMember, Location, User

PG_URL = os.environ.get(
    "PUNCTUAL_BENCH_POSTGRES_URL",
    os.environ.get("PUNCTUAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)

log = logging.getLogger("bench")


def setup_logging(verbose: bool = False) -> None:
    """Logs go to stderr; stdout is reserved for the one JSON result."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@contextmanager
def temp_database(db: str, keep: bool = False) -> Iterator[str]:
    """A migrated, empty database that disappears afterwards: a temporary SQLite file (WAL, as the
    engine configures it) or a throw-away PostgreSQL schema. Yields its URL."""
    if db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="punctual-bench-") as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
            yield url
            if keep:
                log.warning("--keep has no effect on SQLite (the temporary directory is removed)")
        return
    if db != "postgres":
        raise ValueError(f"unknown --db {db!r}")
    schema = f"punctual_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        if keep:
            log.warning("kept schema %s", schema)
        else:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def yardstick_us() -> float:
    """This machine's speed right now: microseconds for ``sum(range(1000))``, best of five. The shared
    machine's speed drifts (seen: 15 to 26 us within an hour), so figures from different runs compare only
    next to it; each benchmark prints it before and after its run (``yardstick_us``)."""
    return round(min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6, 2)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident set size of this process (or of its waited-for children), in MiB."""
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)  # Linux reports KiB


class GcTimer:
    """Seconds the cyclic garbage collector has run in this process since it was made (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0
        gc.callbacks.append(self._note)

    def _note(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += time.perf_counter() - self._started

    def stop(self) -> None:
        gc.callbacks.remove(self._note)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class BenchWorld:
    location_id: str
    user_ids: list[str]
    calendar_ids: list[str]
    contact_ids: list[str]


def make_bench_world(
    session: Session, now: datetime, *, calendars: int, per_slot: int, contact_count: int
) -> BenchWorld:
    """A location with two users (Alice, Bob), ``calendars`` round-robin calendars that both users
    are members of (static per-user meeting links, so no meeting provider is involved), each taking
    ``per_slot`` appointments per user per slot, and ``contact_count`` contacts with email and phone."""
    loc = Location(
        name="Bench Clinic",
        timezone="America/New_York",
        email="clinic@example.com",
        phone="+12125550100",
        custom_values={},
        custom_field_keys=[],
        created_at=now,
    )
    session.add(loc)
    session.flush()
    alice = User(
        location_id=loc.id,
        first_name="Alice",
        last_name="Admin",
        email="alice@example.com",
        phone="+12125550101",
        timezone="America/New_York",
        role="admin",
        created_at=now,
    )
    bob = User(
        location_id=loc.id,
        first_name="Bob",
        last_name="Host",
        email="bob@example.com",
        phone="+12125550102",
        timezone="America/Chicago",
        created_at=now,
    )
    session.add_all([alice, bob])
    session.flush()
    calendar_ids = []
    for i in range(calendars):
        cal = Calendar(
            location_id=loc.id,
            name=f"Consultation {i}",
            slug=f"consultation-{i}",
            # A class: one host, many attendees in one slot (the wave books everyone at the same instant T,
            # which a one-to-one calendar would refuse as overlapping bookings for the host).
            kind="class",
            timezone="America/New_York",
            slot_minutes=30,
            appointments_per_slot=per_slot,
            meeting_location="Phone: +1 212 555 0100",
            created_at=now,
        )
        # Each class has its own host: one host cannot teach two classes at the same instant.
        host = alice if i == 0 else User(location_id=loc.id, first_name="Host", last_name=str(i),
                                         email=f"host{i}@bench.example", timezone="America/New_York", created_at=now)
        session.add(host)
        session.flush()
        cal.members = [CalendarMember(user_id=host.id, position=0, meeting_location=f"https://meet.example.com/h{i}")]
        session.add(cal)
        session.flush()
        calendar_ids.append(cal.id)
    contact_ids = []
    for i in range(contact_count):
        c = contacts.create(
            session,
            loc,
            {
                "first_name": f"Contact{i}",
                "last_name": "Bench",
                "email": f"contact{i}@example.com",
                "phone": f"+1212555{i % 10000:04d}",
                "timezone": "America/New_York",
            },
            now=now,
        )
        contact_ids.append(c.id)
    session.flush()
    return BenchWorld(loc.id, [alice.id, bob.id], calendar_ids, contact_ids)


def reminder_document(hours_before: int = 1) -> dict:
    """The benchmark workflow: on a confirmed booking, wait until ``hours_before`` the start, then
    text and email the contact (merge fields rendered at send time, through the outbox)."""
    return {
        "version": 1,
        "name": "Bench reminder",
        "settings": {},
        "triggers": [{"type": "appointment_status", "filters": {"statuses": ["confirmed"]}}],
        "steps": [
            {"id": "wait", "type": "wait_appointment_time", "direction": "before", "hours": hours_before},
            {
                "id": "sms",
                "type": "send_sms",
                # The title ("Bench visit #i") makes every reminder's text unique (bench/wave.py).
                "body": "Hi {{contact.first_name}}, see you at {{appointment.only_start_time}} "
                "({{appointment.title}}): {{appointment.meeting_location}}",
            },
            {
                "id": "email",
                "type": "send_email",
                "subject": "Reminder: {{appointment.title}}",
                "body": "Hi {{contact.first_name | default('there')}},\n\n"
                "Your appointment with {{user.name}} is at {{appointment.start_time}}.\n"
                "Join: {{appointment.meeting_location}}\n",
            },
        ],
    }


def publish_document(session: Session, location_id: str, document: dict, now: datetime) -> tuple[str, str]:
    """Create and publish a workflow; returns (workflow id, version id)."""
    loc = session.get(Location, location_id)
    wf = workflows.create(session, loc, document, now=now)
    version = workflows.publish(session, wf, now=now)
    return wf.id, version.id
