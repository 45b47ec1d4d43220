"""The production server's parts that run in-process: the wake pipe, gunicorn's options, the
scheduler's coalesced wakes, and SQLite's writer queue and read-only sessions. (The served process
itself is tested in tests/test_serve_process.py.)"""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, text

from automations import serving
from automations.engine import scheduler
from automations.errors import ConfigurationError
from automations.settings import Settings
from automations.store.db import make_engine, make_session_factory, read_only_session, transaction


def test_pipe_waker_never_blocks_and_the_reader_sees_wakes():
    read, write = os.pipe()
    os.set_blocking(write, False)
    wake = serving.PipeWaker(write)
    try:
        for _ in range(200_000):  # far more than a pipe holds: a full pipe is not an error
            wake()
        assert len(os.read(read, 16)) == 16
    finally:
        os.close(read)
    with pytest.raises(OSError):  # a broken pipe other than EPIPE would surface; EPIPE is swallowed
        serving.PipeWaker(-1)()
    wake()  # the reader is gone (EPIPE): the server is stopping, the request must not fail
    os.close(write)


def test_gunicorn_defaults():
    assert serving.DEFAULT_WORKERS == 2 and serving.DEFAULT_THREADS == 2  # on SQLite too: see the module
    opts = serving.gunicorn_options("127.0.0.1", 5000, 2, 8)
    assert opts["worker_class"] == "gthread" and opts["workers"] == 2 and opts["threads"] == 8
    assert opts["accesslog"] is None and opts["graceful_timeout"] > 0
    assert opts["reuse_port"] is True  # a socket per web process (spread: tests/test_serve_process.py)


def test_a_port_something_listens_on_is_refused_by_name():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError) as refused:
            serving.check_port_free("127.0.0.1", port)
        assert f"--port {port}: cannot listen on 127.0.0.1" in refused.value.message
    serving.check_port_free("127.0.0.1", port)  # free again once its owner closed it


class BlockingRuntime:
    """A runtime whose first tick waits until released, to wake the scheduler during a running tick."""

    def __init__(self) -> None:
        self.settings = Settings(tick_seconds=60)
        self.inside = threading.Event()
        self.release = threading.Event()
        self.ticks = 0
        self.concurrent = 0
        self.max_concurrent = 0

    def tick(self):
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        self.ticks += 1
        if self.ticks == 1:
            self.inside.set()
            self.release.wait(10)
        self.concurrent -= 1
        return {"events": 0}

    def next_due(self):
        return None


def test_wakes_during_a_tick_become_one_more_round_not_a_second_instance(monkeypatch):
    monkeypatch.setattr(scheduler, "WAKE_DELAY_SECONDS", 0)
    runtime = BlockingRuntime()
    ticker = scheduler._Ticker(runtime)
    first = threading.Thread(target=ticker)
    first.start()
    assert runtime.inside.wait(10)
    for _ in range(50):  # bookings arriving while the tick runs
        assert ticker.busy()
    ticker()  # the timer firing meanwhile: returns at once
    runtime.release.set()
    first.join(10)
    assert runtime.ticks == 2 and runtime.max_concurrent == 1
    assert not ticker.busy()


def test_scheduler_wake_asks_for_one_run_until_it_starts():
    runtime = BlockingRuntime()
    runtime.clock = None
    sched = scheduler.background(runtime)
    sched.start(paused=True)
    try:
        runtime.wake_hook()
        first = sched.get_job("tick").next_run_time
        assert first <= datetime.now(UTC) + timedelta(seconds=1)  # now, not in a minute (tick_seconds)
        runtime.wake_hook()  # already asked: the job is not pushed again
        assert sched.get_job("tick").next_run_time == first
    finally:
        sched.shutdown(wait=False)


def test_sqlite_writers_queue_and_readers_do_not_wait(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")

    @event.listens_for(engine, "connect")
    def _no_busy_wait(dbapi_connection, _record) -> None:
        # No busy handler at all: a writer that found the lock taken would fail at once with
        # "database is locked", so the writers must have queued on the process's own lock.
        dbapi_connection.execute("PRAGMA busy_timeout=0")

    with engine.begin() as conn:
        conn.execute(text("create table t (n integer)"))
    factory = make_session_factory(engine)
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            for _ in range(20):
                with transaction(factory) as s:
                    s.execute(text("insert into t values (:n)"), {"n": i})
        except BaseException as exc:  # "database is locked" if the writers did not queue
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    with transaction(factory) as holding:  # a writer holds the lock while the others start
        holding.execute(text("insert into t values (-1)"))
        for t in threads:
            t.start()
        with read_only_session(factory) as reader:  # a reader is not held up by the writer
            assert reader.execute(text("select count(*) from t")).scalar() == 0
    for t in threads:
        t.join(30)
    assert not errors
    with read_only_session(factory) as s:
        assert s.execute(text("select count(*) from t")).scalar() == 8 * 20 + 1
    engine.dispose()


