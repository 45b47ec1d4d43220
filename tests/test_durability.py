"""Durability: a worker can be killed at any moment and another resumes with nothing lost or doubled.

(a) a real ``automations worker`` process is SIGKILLed in the middle of a wave; a second one finishes it;
(b) two runtimes in two threads drain one wave on PostgreSQL (SKIP LOCKED claims): each step runs once;
(c) a delivery that dies between claiming messages and recording them: after its lease runs out
    another runtime sends each message exactly once.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text

from automations.booking import contacts
from automations.clock import FrozenClock
from automations.engine.runtime import Runtime
from automations.outbox.delivery import IN_FLIGHT_PER_WORKER, Delivery
from automations.settings import Settings
from automations.store.db import Base, make_engine, make_session_factory
from automations.store.models import (
    Appointment,
    DomainEvent,
    Enrollment,
    EnrollmentLog,
    Location,
    Message,
    WorkflowVersion,
    new_id,
)
from providers.bag import Providers
from providers.base import OutgoingSms, SendResult
from providers.capture import CaptureEmail, CaptureSms
from tests.factories import World, book, doc, make_world, publish

SEND_STEPS = ("sms", "email")
REMINDER = (
    {"id": "wait", "type": "wait_appointment_time", "direction": "before", "hours": 1},
    {
        "id": "sms",
        "type": "send_sms",
        "body": "Hi {{contact.first_name}}, see you at {{appointment.only_start_time}}",
    },
    {
        "id": "email",
        "type": "send_email",
        "subject": "Reminder: {{appointment.title}}",
        "body": "Join: {{appointment.meeting_location}}",
    },
)


class RecordingEmail(CaptureEmail):
    """The capture provider, remembering every message id it was handed (thread-safe enough: list.append)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send_each(self, emails, proceed=None):
        for email, outcome in super().send_each(emails, proceed):
            self.sent.append(email.message_id)
            yield email, outcome


class RecordingSms(CaptureSms):
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, sms: OutgoingSms) -> SendResult:
        self.sent.append(sms.message_id)
        return super().send(sms)


class WorkerDied(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the engine catches it."""


class DyingEmail(CaptureEmail):
    def send_each(self, emails, proceed=None):
        for email in emails:
            if proceed is None or proceed(email):
                raise WorkerDied("killed before the provider call returned")
        yield from ()


class DyingSms(CaptureSms):
    def send(self, sms: OutgoingSms) -> SendResult:
        raise WorkerDied("killed before the provider call returned")


def _recording_providers() -> tuple[Providers, Callable[[], list[str]]]:
    email, sms = RecordingEmail(), RecordingSms()
    return Providers(email=email, sms=sms), lambda: email.sent + sms.sent


def assert_wave_done_once(session, enrollment_ids: set[str], *, step_rows_per_enrollment: int = 4) -> None:
    """Every enrollment completed; one message per (enrollment, send step), sent; one log row per
    (enrollment, step_seq) for step outcomes (the lifecycle rows ``enrolled``/``completed`` have no step)."""
    states = Counter(session.scalars(select(Enrollment.state).where(Enrollment.id.in_(enrollment_ids))))
    assert states == {"completed": len(enrollment_ids)}
    rows = session.execute(select(Message.enrollment_id, Message.step_id, Message.status)).all()
    per_pair = Counter((r.enrollment_id, r.step_id) for r in rows)
    expected = {(e, s) for e in enrollment_ids for s in SEND_STEPS}
    assert set(per_pair) == expected, "lost or unexpected messages"
    assert [pair for pair, n in per_pair.items() if n > 1] == [], "duplicated messages"
    assert Counter(r.status for r in rows) == {"sent": len(expected)}
    step_rows = session.execute(
        select(EnrollmentLog.enrollment_id, EnrollmentLog.step_seq).where(EnrollmentLog.step_id.is_not(None))
    ).all()
    per_seq = Counter(step_rows)
    assert [key for key, n in per_seq.items() if n > 1] == [], "a step ran twice"
    assert Counter(e for e, _ in per_seq) == {e: step_rows_per_enrollment for e in enrollment_ids}


# -- (a) a real worker process, SIGKILLed mid-wave ------------------------------------------------------


def _bulk_wave(url: str, n: int, booked_at: datetime) -> set[str]:
    """A published reminder workflow and ``n`` appointments whose enrollments wait on it, written in bulk
    (Core) as booking would have left them; every wait ended an hour ago, so all the work is due now."""
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        world = make_world(session, booked_at)
        wf = publish(session, world, doc(*REMINDER), booked_at)
        version = session.get(WorkflowVersion, wf.current_version_id)
        loc = session.get(Location, world.location_id)
        people = [
            contacts.create(
                session,
                loc,
                {"first_name": f"P{i}", "email": f"p{i}@example.com", "phone": f"+1212555{i:04d}"},
                now=booked_at,
            ).id
            for i in range(20)
        ]
        workflow_id, version_id = wf.id, version.id
    ids: set[str] = set()
    appts, events, enrolls, logs = [], [], [], []
    for i in range(n):
        appt_id, enr_id = new_id(), new_id()
        start = booked_at + timedelta(hours=2, seconds=i)
        wake = start - timedelta(hours=1)
        appts.append(
            {
                "id": appt_id,
                "location_id": world.location_id,
                "calendar_id": world.static_calendar_id,
                "contact_id": people[i % len(people)],
                "assigned_user_id": None,
                "title": f"Visit {i}",
                "start_at": start,
                "end_at": start + timedelta(minutes=30),
                "timezone": "America/New_York",
                "status": "confirmed",
                "notes": "",
                "is_recurring": False,
                "rescheduled": False,
                "static_location": "https://meet.example.com/static-room",
                "created_at": booked_at,
                "updated_at": booked_at,
            }
        )
        events.append(
            {
                "location_id": world.location_id,
                "kind": "appointment.booked",
                "appointment_id": appt_id,
                "contact_id": people[i % len(people)],
                "payload": {"status": "confirmed"},
                "created_at": booked_at,
                "processed_at": booked_at,
            }
        )
        enrolls.append(
            {
                "id": enr_id,
                "location_id": world.location_id,
                "workflow_id": workflow_id,
                "version_id": version_id,
                "appointment_id": appt_id,
                "contact_id": people[i % len(people)],
                "event_id": str(i),
                "trigger_status": "confirmed",
                "state": "waiting",
                "live": True,
                "step_id": "wait",
                "step_seq": 1,
                "wake_at": wake,
                "wait_kind": "appointment_time",
                "skip_outbound": False,
                "rescheduled": False,
                "created_at": booked_at,
                "updated_at": booked_at,
            }
        )
        logs += [
            {
                "enrollment_id": enr_id,
                "step_seq": 0,
                "step_id": None,
                "step_type": None,
                "outcome": "enrolled",
                "reason": "trigger appointment_status",
                "detail": {},
                "at": booked_at,
            },
            {
                "enrollment_id": enr_id,
                "step_seq": 0,
                "step_id": "wait",
                "step_type": "wait_appointment_time",
                "outcome": "waiting",
                "reason": f"waiting until {wake.isoformat()}",
                "detail": {},
                "at": booked_at,
            },
        ]
        ids.add(enr_id)
    with engine.begin() as conn:
        conn.execute(insert(Appointment), appts)
        conn.execute(insert(DomainEvent), events)
        conn.execute(insert(Enrollment), enrolls)
        conn.execute(insert(EnrollmentLog), logs)
    engine.dispose()
    return ids


def _progress(path: Path) -> tuple[int, int, int]:
    """(messages sent, messages claimed and not yet recorded, enrollments completed), read with plain
    sqlite3 in autocommit mode (WAL: a reader never blocks the worker)."""
    con = sqlite3.connect(path, timeout=10)
    try:
        counts = dict(con.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall())
        done = con.execute("SELECT count(*) FROM enrollments WHERE state = 'completed'").fetchone()[0]
        return counts.get("sent", 0), counts.get("sending", 0), done
    finally:
        con.close()


def _kill_point(path: Path, total: int) -> bool:
    """Some of the wave is out, and preferably a delivery batch is between its claim and its record
    (the interesting moment); failing that, once half of it is out."""
    sent, sending, _ = _progress(path)
    return sent >= total // 10 and (sending > 0 or sent >= total // 2)


def _start_worker(url: str, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PUNCTUAL_TICK_SECONDS": "0.05",
        "PUNCTUAL_LEASE_SECONDS": "2",
        "PUNCTUAL_BATCH_SIZE": "100",
    }
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "automations.cli", "worker"],
            env=env,
            cwd=log_path.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for(predicate: Callable[[], bool], timeout: float, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"worker exited with {proc.returncode} while waiting for {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_worker_killed_mid_wave_loses_and_duplicates_nothing(tmp_path, sqlite_template):
    booked_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    for attempt, n in enumerate((2000, 4000, 8000)):
        path = tmp_path / f"wave-{attempt}.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
        enrollment_ids = _bulk_wave(url, n, booked_at)
        total = n * len(SEND_STEPS)
        log_path = tmp_path / f"worker-{attempt}.log"

        first = _start_worker(url, log_path)
        try:
            _wait_for(lambda: _kill_point(path, total), 120, first, "the kill point")  # noqa: B023
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        sent_at_kill, in_flight, done_at_kill = _progress(path)
        if sent_at_kill == total and done_at_kill == n:
            continue  # the wave finished before the kill landed: try a bigger one
        second = _start_worker(url, log_path)
        try:
            _wait_for(lambda: _progress(path) == (total, 0, n), 120, second, "the second worker to finish")  # noqa: B023
        finally:
            _stop(second)

        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            assert_wave_done_once(session, enrollment_ids)
        engine.dispose()
        print(
            f"wave {n}: killed at {sent_at_kill}/{total} sent, {done_at_kill}/{n} completed, "
            f"{in_flight} in flight; the second worker finished it"
        )
        return
    pytest.skip("every wave finished before the kill landed")


# -- (b) two runtimes, two threads, one wave, PostgreSQL ------------------------------------------------


@pytest.fixture
def pg_url(pg_schema_url):
    engine = make_engine(pg_schema_url)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return pg_schema_url


def _booked_wave(factory, clock: FrozenClock, n: int) -> tuple[World, datetime]:
    """``n`` real bookings (one transaction each, as the API makes them), enrolled by a runtime and
    waiting; returns the world and the instant at which every wait has ended."""
    with factory() as session, session.begin():
        world = make_world(session, clock.now())
        publish(session, world, doc(*REMINDER), clock.now())
    base = clock.now() + timedelta(days=2)
    for i in range(n):
        with factory() as session, session.begin():
            book(
                session,
                world,
                clock.now(),
                start=base + timedelta(minutes=30 * i),
                calendar_id=world.static_calendar_id,
            )
    Runtime(factory, clock=clock, owner="setup").tick()
    return world, base + timedelta(minutes=30 * (n - 1)) - timedelta(hours=1)


@pytest.mark.postgres
def test_two_runtimes_drain_one_wave_each_step_once(pg_url):
    n = 200
    setup_engine = make_engine(pg_url)
    factory = make_session_factory(setup_engine)
    clock = FrozenClock(datetime(2026, 11, 2, 14, 0, tzinfo=UTC))
    _world, due = _booked_wave(factory, clock, n)
    with factory() as session:
        enrollment_ids = set(session.scalars(select(Enrollment.id).where(Enrollment.state == "waiting")))
    assert len(enrollment_ids) == n

    barrier = threading.Barrier(2)
    results: dict[str, dict[str, int]] = {}
    sent: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    engines = [make_engine(pg_url) for _ in range(2)]

    def drain(name: str, engine) -> None:
        try:
            providers, sent_ids = _recording_providers()
            runtime = Runtime(
                make_session_factory(engine),
                clock=FrozenClock(due),
                providers=providers,
                settings=Settings(batch_size=10),
                owner=name,
            )
            barrier.wait(timeout=30)
            results[name] = runtime.tick(due)
            sent[name] = sent_ids()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(f"runtime-{i}", e)) for i, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for e in engines + [setup_engine]:
        e.dispose()
    assert not errors, errors
    assert sum(r["enrollments"] for r in results.values()) == n
    assert sum(r["deliveries"] for r in results.values()) == 2 * n
    for name, r in results.items():
        assert r["enrollments"] > 0 and r["deliveries"] > 0, f"{name} did no share of the work: {results}"
    handed = Counter(mid for ids in sent.values() for mid in ids)
    assert len(handed) == 2 * n and max(handed.values()) == 1, "a message reached the provider twice"
    with make_session_factory(make_engine(pg_url))() as session:
        assert_wave_done_once(session, enrollment_ids)


# -- (c) killed between claiming messages and recording them --------------------------------------------


def test_messages_claimed_by_a_dead_delivery_go_out_once_after_the_lease(factory, clock, world):
    lease = 120
    with factory() as session, session.begin():
        publish(session, world, doc(*REMINDER), clock.now())
        starts = [clock.now() + timedelta(days=1, minutes=30 * i) for i in range(12)]
        for start in starts:
            book(session, world, clock.now(), start=start, calendar_id=world.static_calendar_id)
    setup = Runtime(factory, clock=clock, owner="setup", settings=Settings(lease_seconds=lease))
    setup.tick()
    clock.set(starts[-1] - timedelta(hours=1))
    assert setup.run_enrollments(clock.now()) == 12  # every wait ends: 24 messages in the outbox
    with factory() as session:
        enrollment_ids = set(session.scalars(select(Enrollment.id)))
        assert (
            session.scalar(select(func.count()).select_from(Message).where(Message.status == "pending")) == 24
        )

    dead = Delivery(factory, Providers(email=DyingEmail(), sms=DyingSms()), owner="dead-worker", lease_seconds=lease,
                    clock=clock)
    with pytest.raises(WorkerDied):
        dead.run_batch(clock.now(), limit=100)
    with factory() as session:
        claimed = session.execute(select(Message.status, Message.lease_owner, Message.lease_expires_at)).all()
    # Only the messages on the wire when it died (one per lane: an email and a text) are in doubt; the rest of
    # its claim was never handed over.
    assert Counter((s, o) for s, o, _ in claimed) == {("pending", "dead-worker"): 24 - IN_FLIGHT_PER_WORKER,
                                                      ("sending", "dead-worker"): IN_FLIGHT_PER_WORKER}
    assert {exp for *_, exp in claimed} == {clock.now() + timedelta(seconds=lease)}

    providers, sent_ids = _recording_providers()
    live = Runtime(
        factory, clock=clock, providers=providers, owner="live-worker", settings=Settings(lease_seconds=lease)
    )
    assert live.tick()["deliveries"] == 0  # still leased to the dead worker
    clock.advance(seconds=lease)
    assert live.tick()["deliveries"] == 0  # the lease ends strictly after its expiry instant
    clock.advance(seconds=1)
    assert live.tick()["deliveries"] == 24
    assert live.tick()["deliveries"] == 0

    handed = Counter(sent_ids())
    assert len(handed) == 24 and set(handed.values()) == {1}
    with factory() as session:
        assert_wave_done_once(session, enrollment_ids)
        rows = session.execute(select(Message.lease_owner, Message.attempts, Message.sent_at)).all()
    assert {(o, a, s) for o, a, s in rows} == {(None, 2, clock.now())}


# -- the two lanes of a delivery batch --------------------------------------------------------------------


class EmailAfterText(RecordingEmail):
    """Hands its first email over only once a text of the same batch has gone: sent one after the other
    (emails first), the email would wait for a text that never comes."""

    def __init__(self, text_sent: threading.Event) -> None:
        super().__init__()
        self.text_sent = text_sent
        self.saw_text_first = False

    def send_each(self, emails, proceed=None):
        self.saw_text_first = self.text_sent.wait(timeout=10)
        yield from super().send_each(emails, proceed)


class TextSignals(RecordingSms):
    def __init__(self, text_sent: threading.Event) -> None:
        super().__init__()
        self.text_sent = text_sent

    def send(self, sms: OutgoingSms) -> SendResult:
        result = super().send(sms)
        self.text_sent.set()
        return result


def test_a_batch_sends_its_emails_and_its_texts_side_by_side(factory, clock, world):
    """A delivery batch's emails and texts go out in two lanes at once (one send in flight per lane), so a
    slow provider on one channel does not hold up the other; every outcome is still recorded once."""
    with factory() as session, session.begin():
        publish(session, world, doc(*REMINDER), clock.now())
        starts = [clock.now() + timedelta(days=1, minutes=30 * i) for i in range(4)]
        for start in starts:
            book(session, world, clock.now(), start=start, calendar_id=world.static_calendar_id)
    text_sent = threading.Event()
    email, sms = EmailAfterText(text_sent), TextSignals(text_sent)
    runtime = Runtime(factory, clock=clock, providers=Providers(email=email, sms=sms), owner="lanes")
    runtime.tick()
    clock.set(starts[-1] - timedelta(hours=1))
    assert runtime.tick()["deliveries"] == 8
    assert email.saw_text_first, "the batch's emails waited for its texts (or the reverse): one lane, not two"
    assert len(email.sent) == len(sms.sent) == 4
    with factory() as session:
        assert Counter(session.scalars(select(Message.status))) == {"sent": 8}


class ChecksEarlierTextsRecorded(RecordingSms):
    """At each send, notes which of the texts it sent before are not ``sent`` in the database yet."""

    def __init__(self, factory) -> None:
        super().__init__()
        self.factory = factory
        self.unrecorded: list[str] = []

    def send(self, sms: OutgoingSms) -> SendResult:
        if self.sent:
            with self.factory() as session:
                done = set(session.scalars(select(Message.id).where(Message.status == "sent")))
            self.unrecorded += [mid for mid in self.sent if mid not in done]
        return super().send(sms)


def test_each_answer_is_on_disk_before_the_lanes_next_send(factory, clock, world):
    """A success is written in the transaction that clears the lane's next send: by the time the next text
    goes out, every earlier one is recorded (a kill can leave only the one on the wire in doubt)."""
    with factory() as session, session.begin():
        publish(session, world, doc(*REMINDER), clock.now())
        starts = [clock.now() + timedelta(days=1, minutes=30 * i) for i in range(5)]
        for start in starts:
            book(session, world, clock.now(), start=start, calendar_id=world.static_calendar_id)
    sms = ChecksEarlierTextsRecorded(factory)
    runtime = Runtime(factory, clock=clock, providers=Providers(email=RecordingEmail(), sms=sms), owner="one")
    runtime.tick()
    clock.set(starts[-1] - timedelta(hours=1))
    assert runtime.tick()["deliveries"] == 10
    assert len(sms.sent) == 5 and sms.unrecorded == []
    with factory() as session:
        assert Counter(session.scalars(select(Message.status))) == {"sent": 10}


# -- a long tick's later claims ---------------------------------------------------------------------------


class SlowEmail(RecordingEmail):
    """Each email takes ``seconds`` (on the shared frozen clock); during the second one, ``meanwhile`` runs
    (another worker's tick, with a fresh ``now``)."""

    def __init__(self, clock: FrozenClock, seconds: float, meanwhile: Callable[[], object]) -> None:
        super().__init__()
        self.clock, self.seconds, self.meanwhile, self.calls = clock, seconds, meanwhile, 0

    def send_each(self, emails, proceed=None):
        for email in emails:
            if proceed is not None and not proceed(email):
                continue
            self.calls += 1
            self.clock.advance(seconds=self.seconds)
            if self.calls == 2:
                self.meanwhile()
            self.sent.append(email.message_id)
            yield email, SendResult("capture", f"capture-{email.message_id}")


def test_a_long_tick_claims_with_a_full_lease(factory, clock, world):
    """Every provider call takes 100 s, well inside the 120 s lease. Worker A's tick runs several rounds;
    worker B ticks while A sends its second batch. B must not take over a batch A is still sending."""
    with factory() as session, session.begin():
        publish(session, world, doc(*REMINDER), clock.now())
        starts = [clock.now() + timedelta(days=1, minutes=30 * i) for i in range(20)]
        for start in starts:
            book(session, world, clock.now(), start=start, calendar_id=world.static_calendar_id)
    Runtime(factory, clock=clock, owner="setup").tick()
    clock.set(starts[-1] - timedelta(hours=1))
    settings = Settings(batch_size=10, lease_seconds=120)
    b_providers, b_sent = _recording_providers()
    b = Runtime(factory, clock=clock, providers=b_providers, settings=settings, owner="B")
    a_sms = RecordingSms()
    a_email = SlowEmail(clock, 100, lambda: b.tick())
    a = Runtime(
        factory, clock=clock, providers=Providers(email=a_email, sms=a_sms), settings=settings, owner="A"
    )
    a.tick()
    handed = Counter(a_email.sent + a_sms.sent + b_sent())
    assert len(handed) == 40
    assert [mid for mid, n in handed.items() if n > 1] == [], "B re-sent messages A was still sending"
