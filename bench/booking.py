"""Booking-page benchmark: many visitors racing for few slots through the public HTTP endpoint of a
real served instance (``automations serve`` in a subprocess, its embedded worker on).

Usage (from the repository root)::

    .venv/bin/python bench/booking.py [--db sqlite|postgres] [--attempts 200] [--slots 20] [--per-slot 3] [--concurrency 50]

Setup: a throw-away database with a location and a ``class`` calendar (one host, ``--per-slot``
attendees per slot, open around the clock). The server's booking page lists the free slots; the first
``--slots`` are taken, and ``--attempts`` form posts (distinct visitors, spread evenly over those slots)
are fired at once from ``--concurrency`` threads. Counted: ``booked`` (303 answers), ``taken`` (409:
"pick another time"), ``errors_5xx``, ``p95_ms`` of the posts, and ``double_booked``: appointments in
the database beyond a slot's capacity. Target: booked = slots × per-slot, double_booked 0, errors_5xx 0.
Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from automations.store.db import make_engine, make_session_factory  # noqa: E402
from automations.store.models import Appointment, Calendar, CalendarMember, Location, User  # noqa: E402
from bench.common import percentile, setup_logging, temp_database  # noqa: E402

SLOT_LINK = re.compile(r'href="/book/bench/class/book\?start=([^&"]+)')
TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def build(url: str, per_slot: int) -> None:
    now = datetime.now(UTC)
    factory = make_session_factory(make_engine(url))
    with factory() as s, s.begin():
        loc = Location(name="Bench", slug="bench", timezone="UTC", created_at=now)
        s.add(loc)
        s.flush()
        host = User(location_id=loc.id, first_name="Host", timezone="UTC", created_at=now)
        s.add(host)
        s.flush()
        cal = Calendar(location_id=loc.id, name="Class", slug="class", kind="class", timezone="UTC", slot_minutes=30,
                       appointments_per_slot=per_slot, availability={}, date_overrides={}, meeting_location="Room 1",
                       min_notice_minutes=60, created_at=now)
        cal.members = [CalendarMember(user_id=host.id, position=0)]
        s.add(cal)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--attempts", type=int, default=200)
    parser.add_argument("--slots", type=int, default=20)
    parser.add_argument("--per-slot", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    setup_logging()
    with temp_database(args.db) as url:
        build(url, args.per_slot)
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url, "PUNCTUAL_SECRET_KEY": "bench-secret"}
        server = subprocess.Popen([sys.executable, "-m", "automations.cli", "serve", "--port", str(port)],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(300):
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)  # waiting for a subprocess to listen, not for logic time
                page = client.get("/book/bench/class", params={"tz": "UTC"}).text
                starts = list(dict.fromkeys(httpx.QueryParams("start=" + m).get("start")
                                            for m in SLOT_LINK.findall(page.replace("&amp;", "&"))))[: args.slots]
                form = client.get("/book/bench/class/book", params={"start": starts[0]}).text
                token = TOKEN.search(form).group(1)

            def attempt(i: int) -> tuple[int, float]:
                began = time.perf_counter()
                with httpx.Client(base_url=base, timeout=120) as c:
                    code = c.post("/book/bench/class/book", data={
                        "start": starts[i % len(starts)], "tz": "UTC", "form_token": token,
                        "name": f"Visitor {i}", "email": f"visitor{i}@example.com"}).status_code
                return code, (time.perf_counter() - began) * 1000

            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
                results = list(pool.map(attempt, range(args.attempts)))
            wall = time.perf_counter() - began
        finally:
            server.terminate()
            server.wait(timeout=30)
        factory = make_session_factory(make_engine(url))
        with factory() as s:
            per_slot = s.execute(select(Appointment.start_at, func.count()).group_by(Appointment.start_at)).all()
            capacity = s.scalar(select(Calendar.appointments_per_slot))
    codes = [c for c, _ in results]
    print(json.dumps({
        "db": args.db, "attempts": args.attempts, "slots": len(starts), "per_slot": args.per_slot,
        "booked": codes.count(303), "taken": codes.count(409),
        "double_booked": sum(max(0, n - capacity) for _, n in per_slot),
        "errors_5xx": sum(1 for c in codes if c >= 500), "other": sum(1 for c in codes if c not in (303, 409) and c < 500),
        "p95_ms": round(percentile([ms for _, ms in results], 95), 1), "wall_s": round(wall, 2),
    }))


if __name__ == "__main__":
    main()
