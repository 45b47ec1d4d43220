"""Sends that must not happen twice (#8), counted where it matters: at the receivers (a real SMTP server,
aiosmtpd, and the fake Twilio), through the real clients.

* a real worker process SIGKILLed twice mid-wave: nothing lost, and at most the sends actually in flight at
  each kill arrive twice (``IN_FLIGHT_PER_WORKER`` per kill);
* three workers on PostgreSQL, a deliberately slow provider and a lease shorter than a batch takes: nothing
  lost, nothing twice (the claim is extended before each send and every outcome recorded at once);
* each failed attempt and each give-up logged once at WARNING with the message id and the reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from automations.clock import SystemClock
from automations.engine.runtime import Runtime
from automations.outbox.delivery import IN_FLIGHT_PER_WORKER
from automations.settings import Settings
from automations.store.db import make_engine, make_session_factory
from automations.store.models import Message
from automations.wiring import build_providers
from tests.delivery_fixtures import FROM_NUMBER, PUBLIC_URL, smtp_fixture, twilio_fixture  # noqa: F401
from tests.test_durability import SEND_STEPS, _bulk_wave, _progress, _stop, _wait_for, pg_url  # noqa: F401

SECRET = "test-secret-key-for-workers"


def _received(smtp, twilio) -> Counter:
    """Outbox ids as the receivers saw them: emails by Message-ID, texts by the status-callback URL's ``m``."""
    ids: list[str] = []
    for item in list(smtp.messages):
        message_id = item["msg"]["Message-ID"]  # <punctual.{outbox id}@domain>
        ids.append(message_id.split(".", 1)[1].split("@", 1)[0])
    for resource in list(twilio.messages.values()):
        query = urllib.parse.urlsplit(resource["_status_callback"]).query
        ids.append(urllib.parse.parse_qs(query)["m"][0])
    return Counter(ids)


def _worker_env(url: str, smtp, twilio) -> dict[str, str]:
    return {
        **os.environ, "DATABASE_URL": url, "PUNCTUAL_TICK_SECONDS": "0.05", "PUNCTUAL_LEASE_SECONDS": "2",
        "PUNCTUAL_BATCH_SIZE": "100", "PUNCTUAL_SECRET_KEY": SECRET, "PUNCTUAL_PUBLIC_URL": PUBLIC_URL,
        "SMTP_URL": smtp.url, "TWILIO_ACCOUNT_SID": twilio.account_sid, "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_BASE_URL": twilio.base_url,
    }


def _start(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    with log_path.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "automations.cli", "worker"], env=env, cwd=log_path.parent,
                                stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_sigkilled_workers_repeat_at_most_the_sends_in_flight(tmp_path, sqlite_template, smtp, twilio):
    n = 400
    total = n * len(SEND_STEPS)
    path = tmp_path / "wave.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite:///{path}"
    _bulk_wave(url, n, datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    env = _worker_env(url, smtp, twilio)
    log_path = tmp_path / "workers.log"
    kills = 0
    for fraction in (5, 2):  # kill once a fifth is out, then again once half is
        proc = _start(env, log_path)
        try:
            _wait_for(lambda: sum(_received(smtp, twilio).values()) >= total // fraction, 120, proc,  # noqa: B023
                      f"1/{fraction} of the wave at the receivers")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
    last = _start(env, log_path)
    try:
        _wait_for(lambda: _progress(path)[0] == total, 180, last, "the last worker to finish the wave")
    finally:
        _stop(last)

    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        outbox = set(session.scalars(select(Message.id)))
        statuses = Counter(session.scalars(select(Message.status)))
    engine.dispose()
    received = _received(smtp, twilio)
    duplicates = sum(count - 1 for count in received.values())
    assert len(outbox) == total and statuses == {"sent": total}
    assert set(received) == outbox, "a message never reached its receiver"
    assert duplicates <= kills * IN_FLIGHT_PER_WORKER, f"{duplicates} duplicates after {kills} kills"
    print(f"{total} messages, {kills} SIGKILLs, {duplicates} duplicate(s) at the receivers")


@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_a_slow_provider_and_a_short_lease_send_nothing_twice(pg_url, smtp, twilio):  # noqa: F811
    """Each Twilio request takes 50 ms; a batch of 40 would take 2 s+ against a 1 s lease. Three workers."""
    n = 60
    _bulk_wave(pg_url, n, datetime.now(UTC).replace(microsecond=0) - timedelta(days=1))
    twilio.delay = 0.05
    settings = Settings(database_url=pg_url, batch_size=40, lease_seconds=1, smtp_url=smtp.url,
                        public_url=PUBLIC_URL, secret_key=SECRET, twilio_account_sid=twilio.account_sid,
                        twilio_auth_token=twilio.auth_token, twilio_from_number=FROM_NUMBER,
                        twilio_base_url=twilio.base_url)
    engines = [make_engine(pg_url) for _ in range(3)]
    errors: list[BaseException] = []
    deadline = time.monotonic() + 120

    def work(i: int) -> None:
        try:
            factory = make_session_factory(engines[i])
            runtime = Runtime(factory, clock=SystemClock(), settings=settings, owner=f"worker-{i}",
                              providers=build_providers(settings, factory, SystemClock()))
            while time.monotonic() < deadline:
                runtime.tick()
                if sum(_received(smtp, twilio).values()) >= 2 * n and runtime.next_due() is None:
                    return
                time.sleep(0.05)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    with make_session_factory(engines[0])() as session:
        outbox = set(session.scalars(select(Message.id)))
        statuses = Counter(session.scalars(select(Message.status)))
    for e in engines:
        e.dispose()
    assert not errors, errors
    received = _received(smtp, twilio)
    assert len(outbox) == 2 * n and statuses == {"sent": 2 * n}
    assert set(received) == outbox, "a message never reached its receiver"
    assert [mid for mid, count in received.items() if count > 1] == [], "sent twice"


def test_failed_attempts_and_give_ups_are_logged_once(factory, clock, world, smtp, twilio, caplog):
    from tests.factories import book, doc, publish

    settings = Settings(batch_size=100, public_url=PUBLIC_URL, secret_key=SECRET, smtp_url=smtp.url,
                        twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token,
                        twilio_from_number=FROM_NUMBER, twilio_base_url=twilio.base_url)
    runtime = Runtime(factory, clock=clock, settings=settings, owner="w",
                      providers=build_providers(settings, factory, clock))
    with factory() as s, s.begin():
        publish(s, world, doc({"id": "sms", "type": "send_sms", "body": "hi"}), clock.now())
        book(s, world, clock.now(), calendar_id=world.static_calendar_id)
    twilio.fail_next(1, status=503)
    with caplog.at_level(logging.WARNING, logger="automations.outbox.delivery"):
        runtime.tick()
        with factory() as s:
            (m,) = s.scalars(select(Message)).all()
        twilio.fail_next(1, status=400, code=21211, message="The 'To' number is not valid")
        clock.set(m.due_at)
        runtime.tick()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and m.id in r.getMessage()]
    assert len(lines) == 2, lines
    assert "attempt 1 failed, retrying at" in lines[0] and "503" in lines[0]
    assert "gave up" in lines[1] and "21211" in lines[1]
