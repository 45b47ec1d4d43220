"""Wave benchmark: N appointments whose reminders all come due at the same instant T.

Usage (from the repository root)::

    .venv/bin/python bench/wave.py --n 10000 [--db sqlite|postgres] [--workers 1] [--providers real]

1. Setup: a throw-away database (temporary SQLite file in WAL mode, or a PostgreSQL schema), a
   location with two users, round-robin calendars both users belong to, contacts with email and
   phone, and a published workflow: ``wait_appointment_time`` 1 hour before the start, then
   ``send_sms`` and ``send_email`` (each text names its appointment, so every reminder is unique).
2. Enqueue (measured): N bookings, one transaction each, through ``appointments.book``; the
   runtime handles the domain events (``Runtime.tick`` on a frozen clock at the booking instant),
   which enrolls each appointment and runs it to its wait. Every appointment starts at T + 1 h, so
   every enrollment waits until the same instant T.
3. Drain (measured on the real clock): ``--workers`` worker processes, each a ``Runtime`` with
   ``SystemClock`` driven by the real APScheduler jobs (``automations.engine.scheduler.background``), start
   before T and tick idle; from T they drain the wave. The providers (capture, or with
   ``--providers real`` the real SMTP and Twilio senders pointed at a local aiosmtpd sink and the
   Twilio fake, see ``bench/floor.py``) are wrapped to record the wall-clock instant each message is
   accepted; lateness = that instant - T.
4. Check: every (enrollment, step) message exists once and is sent, once (and, with real providers,
   reached the sink or the fake exactly once).
5. With real providers, the floor: the same number of SMTP and Twilio sends, in the same batches,
   from a process with no engine and no database (``bench/floor.py``); ``drain_over_floor`` compares.

Prints one JSON object on stdout (keys in bench/README.md); logs go to stderr.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import math
import multiprocessing as mp
import os
import pstats
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

import actions  # noqa: E402, F401  (complete the registries first, as the CLI does)
import triggers  # noqa: E402, F401
from automations.booking import appointments, locations  # noqa: E402
from automations.clock import FrozenClock, SystemClock  # noqa: E402
from automations.engine import scheduler  # noqa: E402
from automations.engine.runtime import Runtime  # noqa: E402
from automations.settings import Settings  # noqa: E402
from automations.store.db import make_engine, make_session_factory  # noqa: E402
from automations.store.models import Enrollment, EnrollmentLog, Location, Message  # noqa: E402
from automations.wiring import build_providers  # noqa: E402
from bench import api_enqueue, floor  # noqa: E402
from bench.common import (  # noqa: E402
    GcTimer,
    make_bench_world,
    peak_rss_mb,
    percentile,
    publish_document,
    reminder_document,
    setup_logging,
    temp_database,
    yardstick_us,
)
from providers.bag import Providers  # noqa: E402
from providers.base import OutgoingEmail, OutgoingSms, SendResult  # noqa: E402

log = logging.getLogger("bench.wave")
STEPS = ("sms", "email")  # the workflow's send steps: one message each per enrollment


# -- worker processes -----------------------------------------------------------------------------


class Recorder:
    """What a worker's providers accepted, and when (wall clock), plus what the floor needs to repeat the
    same sends: the delivery batches' shape (emails, texts) and one envelope of each kind."""

    def __init__(self, counter: Any, gc_timer: GcTimer) -> None:
        self.counter = counter
        self.gc_timer = gc_timer
        self.sends: list[tuple[str, float]] = []
        self.errors: list[tuple[str, str]] = []
        self.plan: list[list[int]] = []  # per delivery batch: [emails, texts]
        self.provider_s = 0.0  # time spent inside the providers' send calls
        self.provider_gc_s = 0.0  # of which the garbage collector ran
        self.sample_email: OutgoingEmail | None = None
        self.sample_sms: OutgoingSms | None = None
        # Delivery sends a batch's emails and its texts in two lanes at once (automations.outbox.channels.lanes).
        self.lock = threading.Lock()

    @contextmanager
    def timing(self) -> Iterator[None]:
        t0, gc0 = time.perf_counter(), self.gc_timer.total
        try:
            yield
        finally:
            with self.lock:
                self.provider_s += time.perf_counter() - t0
                self.provider_gc_s += self.gc_timer.total - gc0

    def accepted(self, message_ids: list[str], at: float) -> None:
        self.sends.extend((mid, at) for mid in message_ids)
        with self.counter.get_lock():
            self.counter.value += len(message_ids)


class RecordingEmail:
    """Wraps the email provider (capture or SMTP); everything else is delegated to it."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def send_each(self, emails: list[OutgoingEmail], proceed=None):
        # The real sender's send_each (one SMTP connection for the delivery batch's emails, as the engine
        # sends them), each answer recorded as it comes; the time in ``proceed`` (the engine's own database
        # work before each email) is not provider time.
        rec = self.recorder
        rec.plan.append([0, 0])
        batch = rec.plan[-1]
        if rec.sample_email is None and emails:
            rec.sample_email = emails[0]
        in_proceed = 0.0

        def asked(email: OutgoingEmail) -> bool:
            nonlocal in_proceed
            t0 = time.perf_counter()
            try:
                return proceed is None or proceed(email)
            finally:
                in_proceed += time.perf_counter() - t0

        answers = self.inner.send_each(emails, asked)
        while True:
            before = in_proceed
            with rec.timing():
                answer = next(answers, None)
            with rec.lock:
                rec.provider_s -= in_proceed - before
            if answer is None:
                return
            email, outcome = answer
            batch[0] += 1
            if isinstance(outcome, SendResult):
                rec.accepted([email.message_id], time.time())
            else:
                rec.errors.append((email.message_id, repr(outcome)))
            yield email, outcome

    def send_batch(self, emails: list[OutgoingEmail]) -> list[SendResult | Exception]:
        rec = self.recorder
        rec.plan.append([len(emails), 0])
        if rec.sample_email is None and emails:
            rec.sample_email = emails[0]
        with rec.timing():
            results = self.inner.send_batch(emails)
        at = time.time()
        ok = []
        for e, r in zip(emails, results, strict=True):
            if isinstance(r, SendResult):
                ok.append(e.message_id)
            else:
                rec.errors.append((e.message_id, repr(r)))
        rec.accepted(ok, at)
        return results


class RecordingSms:
    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def __getattr__(self, name: str) -> Any:
        # status_callback in particular: channels.callback_url reads it to name the outbox row.
        return getattr(self.inner, name)

    def send(self, sms: OutgoingSms) -> SendResult:
        rec = self.recorder
        with rec.lock:
            # The batch's email lane may start a moment after its text lane: a few texts can be counted
            # with the batch before (the totals, and each batch's emails, are exact).
            if not rec.plan:
                rec.plan.append([0, 0])
            rec.plan[-1][1] += 1
        if rec.sample_sms is None:
            rec.sample_sms = sms
        try:
            with rec.timing():
                result = self.inner.send(sms)
        except Exception as exc:
            rec.errors.append((sms.message_id, repr(exc)))
            raise
        rec.accepted([sms.message_id], time.time())
        return result


PHASES = ("events", "meetings", "enrollments", "deliveries")
BUSY_KEYS = (*PHASES, "provider_calls", "gc", "gc_in_provider_calls")


class TimedRuntime(Runtime):
    """The real runtime; each tick's wall-clock start, end and work done are noted for the report, and
    the time of each kind of work in the ticks that did work (with --profile, every tick runs under
    cProfile)."""

    ticks: list[tuple[float, float, dict[str, int]]]
    profiler: cProfile.Profile | None = None
    recorder: Recorder
    #: Seconds per kind of work (and inside the providers' send calls), summed over the busy ticks.
    busy_phase_s: dict[str, float]
    _phase: dict[str, float]

    def _timed(self, phase: str, run: Any, now: datetime) -> int:
        t0 = time.perf_counter()
        try:
            return run(now)
        finally:
            self._phase[phase] += time.perf_counter() - t0

    def run_events(self, now: datetime) -> int:
        return self._timed("events", super().run_events, now)

    def run_meetings(self, now: datetime) -> int:
        return self._timed("meetings", super().run_meetings, now)

    def run_enrollments(self, now: datetime) -> int:
        return self._timed("enrollments", super().run_enrollments, now)

    def run_deliveries(self, now: datetime) -> int:
        return self._timed("deliveries", super().run_deliveries, now)

    def tick(self, now: datetime | None = None, max_rounds: int = 10_000) -> dict[str, int]:
        self._phase = dict.fromkeys(PHASES, 0.0)
        rec = self.recorder
        provider_before, provider_gc_before, gc_before = rec.provider_s, rec.provider_gc_s, rec.gc_timer.total
        started = time.time()
        if self.profiler is not None:
            totals = self.profiler.runcall(super().tick, now, max_rounds)
        else:
            totals = super().tick(now, max_rounds)
        if any(totals.values()):
            self.ticks.append((started, time.time(), totals))
            for phase, seconds in self._phase.items():
                self.busy_phase_s[phase] += seconds
            self.busy_phase_s["provider_calls"] += rec.provider_s - provider_before
            self.busy_phase_s["gc"] += rec.gc_timer.total - gc_before
            self.busy_phase_s["gc_in_provider_calls"] += rec.provider_gc_s - provider_gc_before
        return totals


def worker_main(
    url: str,
    index: int,
    settings: dict,
    counter: Any,
    ready: Any,
    stop: Any,
    out: Any,
    profile_dir: str | None = None,
) -> None:
    """One worker process: the runtime on the real clock, ticked by the APScheduler jobs. Its providers
    are the ones ``automations.wiring`` builds from the settings (capture, or SMTP and Twilio when the
    settings carry their URLs and credentials), wrapped to record what they accept."""
    setup_logging()
    floor.quiet_provider_logs()
    # "skipped: maximum number of running instances reached" is expected while a long tick runs.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    recorder = Recorder(counter, GcTimer())
    factory = make_session_factory(make_engine(url))
    config = Settings(database_url=url, **settings)
    built = build_providers(config, factory)
    providers = Providers(
        email=RecordingEmail(built.email, recorder),
        sms=RecordingSms(built.sms, recorder),
        meetings=built.meetings,
        voice=built.voice,
        webhook=built.webhook,
        slack=built.slack,
        default_from_email=built.default_from_email,
        public_url=built.public_url,
        secret_key=built.secret_key,
    )
    runtime = TimedRuntime(
        factory, clock=SystemClock(), owner=f"bench-worker-{index}", providers=providers, settings=config
    )
    runtime.ticks = []
    runtime.recorder = recorder
    runtime.busy_phase_s = dict.fromkeys(BUSY_KEYS, 0.0)
    if profile_dir:
        runtime.profiler = cProfile.Profile()
    sched = scheduler.background(runtime)
    gc.freeze()  # as `automations worker` does: start-up's objects, out of the collector's full passes
    sched.start()
    cpu_ready_s = sum(os.times()[:2])  # start-up (imports, connections) is not the drain's work
    ready.release()
    stop.wait()
    sched.shutdown(wait=True)
    if runtime.profiler is not None:
        dump_profile(runtime.profiler, Path(profile_dir) / f"worker-{index}.prof")
    out.put(
        {
            "index": index,
            "providers": [getattr(built.email, "name", "?"), getattr(built.sms, "name", "?")],
            "sends": recorder.sends,
            "errors": recorder.errors,
            "plan": recorder.plan,
            "provider_s": recorder.provider_s,
            "busy_phase_s": runtime.busy_phase_s,
            "sample_email": recorder.sample_email,
            "sample_sms": recorder.sample_sms,
            "ticks": runtime.ticks,
            "peak_rss_mb": peak_rss_mb(),
            "cpu_s": sum(os.times()[:2]),
            "cpu_ready_s": cpu_ready_s,
        }
    )


def dump_profile(profiler: cProfile.Profile, path: Path, top: int = 25) -> None:
    """Save the profile (``python -m pstats PATH``) and log its top functions by cumulative time."""
    path.parent.mkdir(parents=True, exist_ok=True)  # --profile names a directory that may not exist yet
    profiler.dump_stats(path)
    buf = io.StringIO()
    try:
        pstats.Stats(profiler, stream=buf).sort_stats("cumulative").print_stats(top)
    except TypeError:  # pstats refuses a profile that recorded nothing (no tick did work)
        log.info("profile %s: empty", path)
        return
    log.info("profile %s:\n%s", path, buf.getvalue())


# -- the benchmark --------------------------------------------------------------------------------


def calibrate(factory, url: str, args: argparse.Namespace, now: datetime) -> float:
    """Enqueues per second, measured on a small wave in a second location whose reminders fall a day
    after the benchmark's (so they never take part in the drain). Used only to place T."""
    k = max(20, min(200, args.n // 20))
    with factory() as session, session.begin():
        world = make_bench_world(session, now, calendars=1, per_slot=k, contact_count=min(k, args.contacts))
        publish_document(session, world.location_id, reminder_document(hours_before=1), now)
    runtime = Runtime(
        factory,
        clock=FrozenClock(now),
        owner="bench-calibrate",
        settings=Settings(database_url=url, batch_size=args.batch_size),
    )
    booking, handling = enqueue(
        factory,
        world,
        runtime,
        n=k,
        start_at=now + timedelta(days=2),
        booked_at=now,
        chunk=args.chunk,
        label="Calibration",
    )
    return k / (booking + handling)


def enqueue(
    factory,
    world,
    runtime: Runtime,
    *,
    n: int,
    start_at: datetime,
    booked_at: datetime,
    chunk: int,
    label: str = "Bench",
) -> tuple[float, float]:
    """Book ``n`` appointments (one transaction each) and let the runtime handle their events every
    ``chunk`` bookings. Each appointment is titled ``"{label} visit #{i}"``: the reminders quote the title,
    so every reminder's text is unique. Returns (seconds booking, seconds handling events)."""
    booking = handling = 0.0
    cals, people = world.calendar_ids, world.contact_ids
    for i in range(n):
        t0 = time.perf_counter()
        with factory() as session, session.begin():
            loc = session.get(Location, world.location_id)
            appointments.book(
                session,
                location=loc,
                calendar_id=cals[i % len(cals)],
                contact_id=people[i % len(people)],
                start_at=start_at,
                now=booked_at,
                title=f"{label} visit #{i + 1}",
            )
        t1 = time.perf_counter()
        booking += t1 - t0
        if (i + 1) % chunk == 0 or i + 1 == n:
            runtime.tick(booked_at)
            handling += time.perf_counter() - t1
    return booking, handling


def enqueue_over_api(url: str, world, *, n: int, start_at: datetime, concurrency: int) -> tuple[float, float, float]:
    """Book through ``POST /api/v1/appointments`` on a served instance (``bench/api_enqueue.py``), whose
    embedded worker handles the events; stopped before T so only the wave's workers drain. Returns
    (seconds booking, seconds until the events were handled, CPU seconds of the server's process tree)."""
    with make_session_factory(make_engine(url))() as session, session.begin():
        locations.issue_key(session, session.get(Location, world.location_id), now=datetime.now(UTC),
                            key=api_enqueue.API_KEY)
    factory = make_session_factory(make_engine(url))
    with api_enqueue.served(url) as srv:
        cpu0 = srv.cpu_s()
        results, booking_s = api_enqueue.post_bookings(srv.port, n=n, concurrency=concurrency,
                                                       calendar_ids=world.calendar_ids, start_at=start_at)
        if results.errors:
            raise SystemExit(f"{results.errors} bookings failed over the API; first: {results.first_error}")
        handling_s = api_enqueue.wait_handled(factory, timeout=600)
        cpu_s = srv.cpu_s() - cpu0
    return booking_s, handling_s, cpu_s


def run(url: str, args: argparse.Namespace, outside: floor.OutsideWorld | None = None) -> dict[str, Any]:
    n = args.n
    engine = make_engine(url)
    factory = make_session_factory(engine)
    setup_clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    calendars = max(1, math.ceil(n / args.per_calendar))
    with factory() as session, session.begin():
        world = make_bench_world(
            session,
            setup_clock.now(),
            calendars=calendars,
            per_slot=math.ceil(n / calendars),
            contact_count=min(n, args.contacts),
        )
        publish_document(session, world.location_id, reminder_document(hours_before=1), setup_clock.now())

    # T is a whole second far enough ahead for the enqueue and the workers' start-up; the bookings
    # all happen (on a frozen clock) at booked_at, so every enrollment computes the same T.
    margin = args.margin
    if margin is None and args.enqueue == "api":
        margin = 15 + n / 50  # the API path is not calibrated; --margin to tighten
    elif margin is None:
        rate = calibrate(factory, url, args, setup_clock.now())
        # cProfile slows the enqueue about 2.5x (it is profiled, the calibration is not).
        margin = 5 + 2.0 * n / rate * (3 if args.profile else 1)
        log.info("calibration: ~%.0f enqueues/s; T set %.0fs ahead", rate, margin)
    booked_at = datetime.now(UTC).replace(microsecond=0)
    due = booked_at + timedelta(seconds=math.ceil(margin))
    enqueue_cpu_s = None
    due_epoch = due.timestamp()
    log.info("enqueueing %d appointments on %d calendars; due instant T=%s", n, calendars, due.isoformat())
    enqueuer = Runtime(
        factory,
        clock=FrozenClock(booked_at),
        owner="bench-enqueue",
        settings=Settings(database_url=url, batch_size=args.batch_size),
    )
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    if args.enqueue == "api":
        booking_s, handling_s, enqueue_cpu_s = enqueue_over_api(url, world, n=n, start_at=due + timedelta(hours=1),
                                                                concurrency=args.concurrency)
    else:
        booking_s, handling_s = enqueue(
            factory,
            world,
            enqueuer,
            n=n,
            start_at=due + timedelta(hours=1),
            booked_at=booked_at,
            chunk=args.chunk,
        )
    if profiler is not None:
        profiler.disable()
        dump_profile(profiler, Path(args.profile) / "enqueue.prof")
    enqueue_s = booking_s + handling_s
    with factory() as session:
        waiting = session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.state == "waiting", Enrollment.wake_at == due)
        )
    log.info("enqueued in %.2fs (%.0f/s); %d enrollments waiting until T", enqueue_s, n / enqueue_s, waiting)
    if waiting != n:
        raise SystemExit(f"expected {n} enrollments waiting until T, found {waiting}")
    enqueue_rss = peak_rss_mb()

    # Workers start before T and tick idle until it.
    ctx = mp.get_context("spawn")
    counter, ready, stop, out = ctx.Value("i", 0), ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    settings = {
        "tick_seconds": args.tick_seconds,
        "batch_size": args.batch_size,
        "lease_seconds": args.lease_seconds,
        **(outside.settings if outside is not None else {}),
    }
    procs = [
        ctx.Process(
            target=worker_main, args=(url, i, settings, counter, ready, stop, out, args.profile), daemon=True
        )
        for i in range(args.workers)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=60):
            raise SystemExit("a worker did not start within 60 s")
    headroom = due_epoch - time.time()
    log.info("workers ready %.1fs before T", headroom)
    if headroom < 0.5:
        stop.set()
        raise SystemExit(f"the enqueue overran the due instant by {-headroom:.1f}s: raise --margin")

    expected = n * len(STEPS)
    deadline = due_epoch + args.timeout
    while counter.value < expected and time.time() < deadline:
        time.sleep(0.02)
    if counter.value < expected:
        log.error("timed out with %d of %d messages sent", counter.value, expected)
    stop.set()
    reports = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    if outside is not None and any(r["providers"] != ["smtp", "twilio"] for r in reports):
        raise SystemExit(f"workers did not use the real senders: {[r['providers'] for r in reports]}")
    result = check(factory, reports, n=n, due_epoch=due_epoch, outside=outside)
    if outside is not None:
        result.update(run_floor(outside, reports, result["drain_s"], args.floor_repeats))

    return {
        "n": n,
        "db": args.db,
        "workers": args.workers,
        "providers": args.providers,
        "enqueue": args.enqueue,
        "enqueue_per_s": round(n / enqueue_s, 1),
        "enqueue_cpu_ms_per_booking": None if enqueue_cpu_s is None else round(enqueue_cpu_s * 1000 / n, 2),
        "drain_cpu_ms_per_booking": round(sum(r["cpu_s"] for r in reports) * 1000 / n, 2),
        "drain_cpu_ms_per_booking_excl_startup": round(sum(r["cpu_s"] - r["cpu_ready_s"] for r in reports) * 1000 / n, 2),
        "cpu_ms_per_booking_end_to_end": None if enqueue_cpu_s is None
        else round((enqueue_cpu_s + sum(r["cpu_s"] for r in reports)) * 1000 / n, 2),
        "book_s": round(booking_s, 2),
        "handle_events_s": round(handling_s, 2),
        **result,
        "peak_rss_mb": max([enqueue_rss] + [r["peak_rss_mb"] for r in reports]),
        "peak_rss_mb_enqueue": enqueue_rss,
        "peak_rss_mb_workers": [r["peak_rss_mb"] for r in reports],
        "tick_seconds": args.tick_seconds,
        "batch_size": args.batch_size,
        "calendars": calendars,
        "contacts": len(world.contact_ids),
    }


def check(
    factory, reports: list[dict], *, n: int, due_epoch: float, outside: floor.OutsideWorld | None = None
) -> dict[str, Any]:
    """Lateness from the providers' records; loss and duplication from the database and the records
    (and, with real providers, from what the SMTP sink and the Twilio fake received)."""
    with factory() as session:
        rows = session.execute(
            select(
                Message.id,
                Message.enrollment_id,
                Message.step_id,
                Message.status,
                Message.sent_at,
                Message.to_address,
                Message.body,
            )
        ).all()
        completed = session.scalar(
            select(func.count()).select_from(Enrollment).where(Enrollment.state == "completed")
        )
        # Step outcomes only: the lifecycle rows (enrolled, completed) carry no step and share a step_seq.
        log_dupes = session.scalar(
            select(func.count()).select_from(
                select(EnrollmentLog.enrollment_id)
                .where(EnrollmentLog.step_id.is_not(None))
                .group_by(EnrollmentLog.enrollment_id, EnrollmentLog.step_seq)
                .having(func.count() > 1)
                .subquery()
            )
        )
    pair_of = {r.id: (r.enrollment_id, r.step_id) for r in rows}
    rows_per_pair = Counter(pair_of.values())
    sent_pairs = {(r.enrollment_id, r.step_id) for r in rows if r.status == "sent"}
    expected_pairs = n * len(STEPS)

    sends = [s for r in reports for s in r["sends"]]
    sends_per_pair: Counter = Counter()
    first_send: dict[tuple[str, str], float] = {}
    for message_id, at in sends:
        pair = pair_of.get(message_id)
        sends_per_pair[pair] += 1
        first_send[pair] = min(at, first_send.get(pair, at))
    received: dict[str, Any] = {}
    if outside is None:
        lost = expected_pairs - len(sent_pairs)
        extra_sends = sum(c - 1 for c in sends_per_pair.values() if c > 1)
    else:
        received, received_per_pair = check_received(outside, rows, pair_of)
        # Lost: not sent according to the outbox, or never arrived. Duplicated: the larger of the extra
        # hand-overs and the extra arrivals of a pair (one duplicate shows up in both).
        lost = expected_pairs - len(sent_pairs & set(received_per_pair))
        extra_sends = sum(
            max(sends_per_pair[p], received_per_pair[p]) - 1
            for p in set(sends_per_pair) | set(received_per_pair)
            if max(sends_per_pair[p], received_per_pair[p]) > 1
        )
    duplicated = extra_sends + sum(c - 1 for c in rows_per_pair.values() if c > 1)
    lateness = [at - due_epoch for at in first_send.values()]
    db_lateness = [r.sent_at.timestamp() - due_epoch for r in rows if r.sent_at is not None]
    ticks = sorted(t for r in reports for t in r["ticks"])
    drain_s = max(lateness) if lateness else None

    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "messages": len(sends),
        "expected_messages": expected_pairs,
        "drain_s": rounded(drain_s),
        "messages_per_s": round(len(first_send) / drain_s, 1) if drain_s else None,
        "lateness_p50_s": rounded(percentile(lateness, 50)),
        "lateness_p95_s": rounded(percentile(lateness, 95)),
        "lateness_p99_s": rounded(percentile(lateness, 99)),
        "lateness_max_s": rounded(max(lateness) if lateness else None),
        "first_send_s": rounded(min(lateness) if lateness else None),
        "last_commit_s": rounded(ticks[-1][1] - due_epoch if ticks else None),
        "sent_at_column_lateness_p99_s": rounded(percentile(db_lateness, 99)),
        "lost": lost,
        "duplicated": duplicated,
        "duplicated_log_rows": log_dupes,
        "enrollments_completed": completed,
        "busy_ticks": len(ticks),
        "busy_tick_s": [round(end - start, 3) for start, end, _ in ticks][:20],
        "per_worker_messages": [len(r["sends"]) for r in reports],
        "provider_errors": sum(len(r["errors"]) for r in reports),
        "worker_provider_s": round(sum(r["provider_s"] for r in reports), 3),
        "busy_phase_s": busy_phases(reports),
        **received,
    }


def busy_phases(reports: list[dict]) -> dict[str, float]:
    """Seconds per kind of work in the ticks that did work, summed over the workers; the deliveries'
    share outside the providers' send calls is the outbox's own work (claim, render, record)."""
    total = Counter()
    for r in reports:
        total.update(r["busy_phase_s"])
    out = {key: round(total[key], 3) for key in BUSY_KEYS}
    out["deliveries_excl_provider"] = round(total["deliveries"] - total["provider_calls"], 3)
    return out


def check_received(outside: floor.OutsideWorld, rows: list, pair_of: dict) -> tuple[dict[str, Any], Counter]:
    """What the SMTP sink and the Twilio fake got from the wave: emails by Message-ID (which carries the
    outbox id), texts by the outbox id in their status-callback URL; each text's (To, Body) must match its
    outbox row, and every text must be distinct."""
    row_of = {r.id: r for r in rows}
    per_pair: Counter = Counter()
    unknown = 0
    emails = outside.sink.snapshot()
    for header, _, _ in emails:
        pair = pair_of.get(floor.outbox_id(header) or "")
        if pair is None or pair[1] != "email":
            unknown += 1
            continue
        per_pair[pair] += 1
    texts = outside.sms_received()
    mismatched = 0
    for m in texts:
        mid = floor.callback_outbox_id(m.get("_status_callback")) or ""
        pair = pair_of.get(mid)
        if pair is None or pair[1] != "sms":
            unknown += 1
            continue
        per_pair[pair] += 1
        row = row_of[mid]
        if (m.get("to"), m.get("body")) != (row.to_address, row.body):
            mismatched += 1
    return {
        "received_emails": len(emails),
        "received_sms": len(texts),
        "received_lost": sum(1 for p in pair_of.values() if p not in per_pair),
        "received_duplicated": sum(c - 1 for c in per_pair.values() if c > 1),
        "received_unknown": unknown,
        "distinct_sms_texts": len({(m.get("to"), m.get("body")) for m in texts}),
        "sms_text_mismatches": mismatched,
        "smtp_connections": len({connection for _, _, connection in emails}),
    }, per_pair


def run_floor(
    outside: floor.OutsideWorld, reports: list[dict], drain_s: float | None, repeats: int = 1
) -> dict[str, Any]:
    """The same SMTP and Twilio sends as the engine made (same delivery batches, same envelopes but for
    their ids), from a process with no engine and no database; timed (``bench/floor.py``). With
    ``repeats`` > 1 the fastest run counts."""
    plan = [tuple(b) for r in reports for b in r["plan"]]
    email = next((r["sample_email"] for r in reports if r["sample_email"] is not None), floor.SAMPLE_EMAIL)
    sms = next((r["sample_sms"] for r in reports if r["sample_sms"] is not None), floor.SAMPLE_SMS)
    log.info(
        "floor: %d emails in %d SMTP batches and %d texts, no engine",
        sum(e for e, _ in plan),
        sum(1 for e, _ in plan if e),
        sum(t for _, t in plan),
    )
    result = floor.best_floor(outside, floor.run_floor_process(outside.settings, plan, email, sms, repeats))
    floor_s = result["floor_drain_s"]
    result["drain_over_floor"] = round(drain_s / floor_s, 2) if drain_s and floor_s else None
    bookings = sum(t for _, t in plan)  # one text per booking
    if bookings:
        result["floor_cpu_ms_per_booking"] = round(result["floor_cpu_s"] * 1000 / bookings, 2)
    lanes_s = result.get("floor_two_lanes_s")
    result["drain_over_two_lane_floor"] = round(drain_s / lanes_s, 2) if drain_s and lanes_s else None
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="appointments in the wave (default 10000)")
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--workers", type=int, default=1, help="worker processes draining the wave")
    p.add_argument(
        "--providers",
        choices=("capture", "real"),
        default="capture",
        help="capture outbox (default), or the real SMTP and Twilio senders to a local sink and fake",
    )
    p.add_argument(
        "--nagle-fake",
        action="store_true",
        help="with --providers real: leave Nagle's algorithm on in the Twilio fake (~44 ms per SMS)",
    )
    p.add_argument(
        "--floor-repeats",
        type=int,
        default=1,
        help="with --providers real: run the floor this many times and keep the fastest (default 1)",
    )
    p.add_argument(
        "--tick-seconds",
        type=float,
        default=Settings.tick_seconds,
        help="scheduler interval (PUNCTUAL_TICK_SECONDS); default the engine's",
    )
    p.add_argument("--batch-size", type=int, default=Settings.batch_size, help="PUNCTUAL_BATCH_SIZE")
    p.add_argument("--lease-seconds", type=int, default=Settings.lease_seconds, help="PUNCTUAL_LEASE_SECONDS")
    p.add_argument(
        "--per-calendar", type=int, default=1000, help="appointments per calendar (all in one slot)"
    )
    p.add_argument(
        "--contacts", type=int, default=1000, help="distinct contacts (appointments cycle over them)"
    )
    p.add_argument(
        "--enqueue",
        choices=("inprocess", "api"),
        default="inprocess",
        help="book in this process (default), or over HTTP through a served instance (bench/api_enqueue.py)",
    )
    p.add_argument("--concurrency", type=int, default=32, help="with --enqueue api: concurrent HTTP clients")
    p.add_argument("--chunk", type=int, default=500, help="bookings between two event-handling ticks")
    p.add_argument(
        "--margin",
        type=float,
        default=None,
        help="seconds from the enqueue start to T (default: 5 + 2 x n / a calibrated enqueue rate, x 3"
        " with --profile)",
    )
    p.add_argument("--timeout", type=float, default=300, help="give up draining this long after T")
    p.add_argument(
        "--profile",
        metavar="DIR",
        default=None,
        help="run the enqueue and every worker tick under cProfile; write DIR/*.prof, log the top",
    )
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.verbose)
    real = floor.outside_world(nagle_fake=args.nagle_fake) if args.providers == "real" else nullcontext()
    before = yardstick_us()
    with temp_database(args.db) as url, real as outside:
        result = run(url, args, outside)
    print(json.dumps({**result, "yardstick_us": [before, yardstick_us()]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
