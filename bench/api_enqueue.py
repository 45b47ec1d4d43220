"""Booking throughput through the public API: a real served instance, real concurrent HTTP clients.

Usage (from the repository root)::

    .venv/bin/python bench/api_enqueue.py --n 10000 --concurrency 32 [--db postgres --web-processes 2]

1. Setup (not measured): a throw-away database, the wave benchmark's location, users and round-robin
   calendars, its published reminder workflow ("1 hour before", then a text and an email) and an API key.
2. ``automations serve`` in a subprocess, exactly as the README starts it (its defaults: the production
   server and the embedded worker), on a free port, on that database.
3. ``--concurrency`` client threads, each with its own keep-alive connection (``http.client``: the
   clients should cost the shared CPU as little as possible), post ``POST /api/v1/appointments`` with an
   inline new contact, ``--n`` in all. Every appointment starts at the same instant, so every
   enrollment's wait comes due at one instant T (an hour before it). A booking is committed (contact,
   appointment, meeting, domain event) before its 201.
4. After the last answer, wait until the embedded worker has handled every booking's event (each
   contact enrolled and run to its wait); check that N enrollments wait until T.

Prints one JSON object (keys in bench/README.md); logs go to stderr.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from automations.booking import locations  # noqa: E402
from automations.serving import DEFAULT_WORKERS  # noqa: E402
from automations.store.db import make_engine, make_session_factory  # noqa: E402
from automations.store.models import DomainEvent, Enrollment, Location  # noqa: E402
from bench.common import (  # noqa: E402
    make_bench_world,
    percentile,
    publish_document,
    reminder_document,
    setup_logging,
    temp_database,
    yardstick_us,
)

log = logging.getLogger("bench.api_enqueue")
BIN = Path(sys.executable).parent / "automations"
API_KEY = "pk_bench_api_enqueue"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    """A running ``automations serve``: its process, port and log file."""

    proc: subprocess.Popen
    port: int
    log_path: Path

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def cpu_parts(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by the server's processes, by role: ``web``
        (gunicorn's web processes), ``worker`` (the embedded worker) and ``arbiter``."""
        parts = {"web": 0.0, "worker": 0.0, "arbiter": 0.0}
        for p in self.tree():
            try:
                t = p.cpu_times()
                role = ("arbiter" if p.pid == self.proc.pid
                        else "worker" if "--embedded-worker" in " ".join(p.cmdline()) else "web")
            except psutil.NoSuchProcess:
                continue
            parts[role] += t.user + t.system
        return parts

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the server and every live process under it."""
        return sum(self.cpu_parts().values())

    def rss_mb(self) -> float:
        total = 0
        for p in self.tree():
            with suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return round(total / 2**20, 1)


@contextmanager
def served(url: str, *, web_processes: int | None = None, threads: int | None = None,
           worker: bool = True, extra_env: dict[str, str] | None = None,
           command: list[str] | None = None) -> Iterator[Served]:
    """``automations serve`` on a free port (README defaults unless told otherwise); stopped with
    SIGTERM (graceful) afterwards. Its output goes to a temporary log file. ``command`` replaces
    ``automations`` (``bench/booking_floor.py`` serves its floor this way); it must take ``serve --port
    --workers --threads --no-worker`` and answer ``GET /healthz``. Yields once every web process is up."""
    port = free_port()
    # PUNCTUAL_BENCH_SERVE: another command for `automations` (e.g. an older checkout, to compare).
    command = command or (os.environ.get("PUNCTUAL_BENCH_SERVE") or str(BIN)).split()
    cmd = [*command, "serve", "--port", str(port)]
    if web_processes is not None:
        cmd += ["--workers", str(web_processes)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if not worker:
        cmd.append("--no-worker")
    # One client address and one key make the whole wave: limits far above it, still counted (their cost
    # is part of every request), never reached.
    limits = {"PUNCTUAL_RATE_LIMIT_PER_KEY": "100000000", "PUNCTUAL_RATE_LIMIT_PER_ADDRESS": "100000000"}
    env = {**os.environ, "DATABASE_URL": url, **limits, **(extra_env or {})}
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"punctual-bench-serve-{port}.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    srv = Served(proc, port, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode}: see {log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer /healthz within 60 s: see {log_path}")
            time.sleep(0.1)
        # /healthz answered from one web process; the CPU a run counts starts once all of them exist.
        while len(srv.tree()) < 1 + (web_processes or DEFAULT_WORKERS) + (1 if worker else 0):
            if time.monotonic() > deadline:
                raise SystemExit(f"the server's processes did not all start within 60 s: see {log_path}")
            time.sleep(0.1)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class ClientResults:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    first_error: str | None = None


def booking_body(i: int, calendar_id: str, start_at: datetime, label: str) -> bytes:
    return json.dumps({
        "calendar_id": calendar_id,
        "start_time": start_at.isoformat(),
        "title": f"{label} visit #{i + 1}",
        "contact": {"first_name": f"Api{i}", "last_name": "Bench", "email": f"api{i}@example.com",
                    "phone": f"+1212555{i % 10000:04d}", "timezone": "America/New_York"},
    }).encode()


class KeepAlive:
    """One client's keep-alive connection (``http.client``: cheap on the shared CPU). ``call`` answers the
    status, the body and the latency in ms; a transport error is status 0, and the next call reconnects."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            resp = self.conn.getresponse()
            payload, status = resp.read(), resp.status
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            status, payload = 0, repr(exc).encode()
        return status, payload, (time.perf_counter() - t0) * 1000

    def close(self) -> None:
        self.conn.close()


def post_bookings(port: int, *, n: int, concurrency: int, calendar_ids: list[str], start_at: datetime,
                  api_key: str = API_KEY, label: str = "Bench") -> tuple[ClientResults, float]:
    """Post ``n`` bookings from ``concurrency`` threads (one keep-alive connection each); returns the
    results and the wall time from the first request to the last answer."""
    results = ClientResults()
    lock = threading.Lock()
    counter = iter(range(n))
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}

    def client() -> None:
        conn = KeepAlive(port)
        mine: list[float] = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            body = booking_body(i, calendar_ids[i % len(calendar_ids)], start_at, label)
            status, payload, elapsed = conn.call("POST", "/api/v1/appointments", body, headers)
            with lock:
                results.statuses[str(status)] = results.statuses.get(str(status), 0) + 1
                if status != 201:
                    results.errors += 1
                    results.first_error = results.first_error or f"{status}: {payload[:300]!r}"
            mine.append(elapsed)
        conn.close()
        with lock:
            results.latencies_ms.extend(mine)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0


@contextmanager
def page_readers(port: int, path: str, count: int) -> Iterator[ClientResults]:
    """``count`` clients loading ``path`` (the public booking page: a week of slots) over and over, one
    keep-alive connection each, until the block ends: visitors browsing while others book."""
    results, stop, lock = ClientResults(), threading.Event(), threading.Lock()

    def reader() -> None:
        conn = KeepAlive(port)
        mine: list[float] = []
        while not stop.is_set():
            status, _payload, elapsed = conn.call("GET", path)
            mine.append(elapsed)
            if status != 200:
                with lock:
                    results.errors += 1
        conn.close()
        with lock:
            results.latencies_ms.extend(mine)

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    try:
        yield results
    finally:
        stop.set()
        for t in threads:
            t.join()


def wait_handled(factory, timeout: float) -> float:
    """Seconds until no domain event is left unprocessed (the embedded worker handled every booking)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        with factory() as session:
            if session.scalar(select(func.count()).select_from(DomainEvent)
                              .where(DomainEvent.processed_at.is_(None))) == 0:
                return time.perf_counter() - t0
        time.sleep(0.05)
    raise SystemExit(f"events still unprocessed {timeout:.0f} s after the last booking")


def prepare(url: str, n: int, per_calendar: int, now: datetime, api_key: str = API_KEY) -> list[str]:
    """The wave's world (no contacts: every booking brings its own), its workflow and an API key."""
    factory = make_session_factory(make_engine(url))
    calendars = max(1, math.ceil(n / per_calendar))
    with factory() as session, session.begin():
        world = make_bench_world(session, now, calendars=calendars, per_slot=math.ceil(n / calendars),
                                 contact_count=0)
        publish_document(session, world.location_id, reminder_document(hours_before=1), now)
        locations.issue_key(session, session.get(Location, world.location_id), now=now, key=api_key)
    factory.kw["bind"].dispose()
    return world.calendar_ids


def load_avg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    calendar_ids = prepare(url, args.n, args.per_calendar, now)
    due = now + timedelta(hours=args.due_in_hours)
    factory = make_session_factory(make_engine(url, pool_size=1) if "postgresql" in url else make_engine(url))
    with served(url, web_processes=args.web_processes, threads=args.threads, worker=not args.no_worker) as srv:
        load_before = load_avg()
        parts0, client0 = srv.cpu_parts(), time.process_time()
        # The first calendar's public page (bench world: location "Bench Clinic", calendars "consultation-<i>").
        with (page_readers(srv.port, "/book/bench-clinic/consultation-0", args.readers) if args.readers
              else nullcontext(ClientResults())) as reads:
            results, wall = post_bookings(srv.port, n=args.n, concurrency=args.concurrency,
                                          calendar_ids=calendar_ids, start_at=due + timedelta(hours=1))
        client_cpu = time.process_time() - client0
        settle = 0.0 if args.no_worker else wait_handled(factory, args.timeout)
        parts = {role: spent - parts0[role] for role, spent in srv.cpu_parts().items()}
        cpu = sum(parts.values())
        rss = srv.rss_mb()
        log_text = srv.log_path.read_text(errors="replace")
    with factory() as session:
        waiting = session.scalar(select(func.count()).select_from(Enrollment)
                                 .where(Enrollment.state == "waiting", Enrollment.wake_at == due))
    ok = args.n - results.errors
    return {
        "n": args.n,
        "concurrency": args.concurrency,
        "db": args.db,
        "web_processes": args.web_processes,
        "bookings_per_s": round(ok / wall, 1),
        "p50_ms": round(percentile(results.latencies_ms, 50) or 0, 1),
        "p99_ms": round(percentile(results.latencies_ms, 99) or 0, 1),
        "cpu_ms_per_booking": round(cpu * 1000 / max(ok, 1), 2),
        "cpu_ms_per_booking_parts": {role: round(spent * 1000 / max(ok, 1), 2) for role, spent in parts.items()},
        "client_cpu_ms_per_booking": round(client_cpu * 1000 / max(ok, 1), 2),
        "errors": results.errors,
        **({"readers": args.readers, "page_reads_per_s": round(len(reads.latencies_ms) / wall, 1),
            "page_read_p50_ms": round(percentile(reads.latencies_ms, 50) or 0, 1),
            "page_read_p99_ms": round(percentile(reads.latencies_ms, 99) or 0, 1),
            "page_read_errors": reads.errors} if args.readers else {}),
        "statuses": results.statuses,
        "first_error": results.first_error,
        "wall_s": round(wall, 2),
        "events_settled_s": round(settle, 2),
        "enrollments_waiting_until_T": waiting,
        "server_rss_mb": rss,
        "server_log_warnings": sum(1 for line in log_text.splitlines() if " WARNING " in line),
        "load_before": load_before,
        "load_after": load_avg(),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="bookings to post (default 10000)")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent clients (default 32)")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--web-processes", type=int, default=None,
                   help="`automations serve --workers N` (default: the serve default)")
    p.add_argument("--threads", type=int, default=None, help="`automations serve --threads N`")
    p.add_argument("--no-worker", action="store_true",
                   help="serve without the embedded worker (diagnosis: the bookings alone; no event is handled)")
    p.add_argument("--readers", type=int, default=0,
                   help="clients loading the first calendar's public booking page meanwhile (default 0)")
    p.add_argument("--per-calendar", type=int, default=1000, help="appointments per calendar (one slot each)")
    p.add_argument("--due-in-hours", type=float, default=2, help="T, the instant every wait comes due")
    p.add_argument("--timeout", type=float, default=600, help="give up waiting for the events this long")
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
