"""The production server behind ``automations serve``: gunicorn with threaded (``gthread``) web
workers, plus at most ONE embedded worker process, however many web processes there are.

Why gunicorn: a well-kept, pre-fork WSGI server with graceful shutdown (SIGTERM finishes the requests
in flight), worker restarts, and no version in its ``Server`` header (the app sets its own security
headers, ``web/headers.py``, whatever serves it). Two web processes use both
cores, each with its own listening socket (``reuse_port``) so the kernel spreads connections over
them; two threads each, so a slow request (an OAuth callback waiting on Zoom) does not stall its
process, but no more: requests are CPU-bound here, and every extra thread takes the GIL from the one
that holds SQLite's writer (measured in bench/README.md).

The embedded worker is ``automations worker`` run as a child process (``python -m automations.serving
--embedded-worker``); web processes wake it after a booking through a pipe (one byte; a full pipe
means it is already awake), so a confirmation is not late by a tick and no request ever runs engine
work. If the worker process dies, the server stops (a supervisor restarts both; all state is in the
database). Everything here is plumbing: the engine and the app are created exactly as elsewhere.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

from gunicorn.app.base import BaseApplication

from automations.engine import scheduler
from automations.engine.runtime import Runtime
from automations.errors import ConfigurationError
from automations.settings import Settings
from automations.store.db import make_engine, make_session_factory
from automations.wiring import build_runtime
from web.app import create_app

log = logging.getLogger(__name__)

#: Environment variable carrying the read end of the wake pipe to the embedded worker.
WAKE_FD_ENV = "PUNCTUAL_WAKE_FD"


#: Web processes unless told otherwise: two, on SQLite too. Writes still go one at a time (the processes
#: queue on the writer lock's ``flock``, handed on at each commit), but what a request does outside its
#: write (reading and checking the request, the API key, writing the answer) runs on the other core
#: instead of taking the GIL from the request that holds the writer.
DEFAULT_WORKERS = 2
#: Threads per web process unless told otherwise (``--threads``): see the module's docstring.
DEFAULT_THREADS = 2


class PipeWaker:
    """``wake()`` for web processes: one byte into the wake pipe, never blocking."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __call__(self) -> None:
        try:
            os.write(self.fd, b"w")
        except BlockingIOError:  # the pipe is full: the worker has wake-ups enough
            pass
        except OSError as exc:  # the worker is gone; the server is stopping
            if exc.errno != errno.EPIPE:
                raise


class _App(BaseApplication):
    def __init__(self, options: dict[str, Any], settings: Settings, wake_fd: int | None) -> None:
        self.options = options
        self.settings = settings
        self.wake_fd = wake_fd
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # In each web process, after the fork: its own engine and connection pool.
        factory = make_session_factory(make_engine(self.settings.database_url))
        runtime = build_runtime(self.settings, factory)  # the deployment's providers (composition root)
        runtime.wake_hook = PipeWaker(self.wake_fd) if self.wake_fd is not None else None
        app = create_app(factory=factory, runtime=runtime, settings=self.settings, clock=runtime.clock)
        # What start-up loaded (app, mappers, schemas) lives as long as the process: out of the cyclic
        # collector's way, so a full collection does not walk it all (~80 ms) inside a request that may
        # hold SQLite's writer.
        gc.freeze()
        return app


class EmbeddedWorker:
    """The one worker process and the thread in the server that notices if it dies."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.stopping = False

    def start(self, wake_read_fd: int) -> None:
        env = {**os.environ, WAKE_FD_ENV: str(wake_read_fd)}
        self.proc = subprocess.Popen([sys.executable, "-m", "automations.serving", "--embedded-worker"],
                                     env=env, pass_fds=(wake_read_fd,))
        os.close(wake_read_fd)
        threading.Thread(target=self._watch, name="embedded-worker-watch", daemon=True).start()

    def _watch(self) -> None:
        assert self.proc is not None  # started by start() just before this thread
        code = self.proc.wait()
        if not self.stopping:
            log.error("the embedded worker exited (%s); stopping the server", code)
            os.kill(os.getpid(), signal.SIGTERM)

    def stop(self, timeout: float) -> None:
        self.stopping = True
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # the worker finishes its tick, then exits
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.warning("the embedded worker did not stop within %.0f s; killing it", timeout)
            self.proc.kill()
            self.proc.wait()


def gunicorn_options(host: str, port: int, workers: int, threads: int, *, graceful_timeout: int = 30) -> dict:
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "graceful_timeout": graceful_timeout,
        "timeout": 60,
        "keepalive": 5,
        # A listening socket per web process (SO_REUSEPORT): the kernel spreads new connections over them.
        # On one shared socket, whichever process woke first took every connection of a burst (a
        # proxy's or a client's keep-alive pool), and the other process sat idle.
        "reuse_port": True,
        "accesslog": None,  # one line per request is the proxy's job
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "punctual",
    }


def check_port_free(host: str, port: int) -> None:
    """Refuse a port something already listens on. With ``reuse_port`` the web processes bind it
    themselves, and a bind with SO_REUSEPORT would quietly share the port with another server of the
    same user (an old Punctual still running) instead of failing; this bind, without it, fails."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a closed server's TIME_WAIT is no owner
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigurationError("--port", f"{port}: cannot listen on {host} ({exc.strerror}); "
                                               "is another server running there?") from None


def serve(settings: Settings, *, host: str, port: int, workers: int | None = None, threads: int | None = None,
          embedded_worker: bool = True) -> None:
    """Run the server until SIGTERM/SIGINT: gunicorn's arbiter in this process, ``workers`` web
    processes with ``threads`` threads each, and (unless disabled) one embedded worker process.
    Call :func:`check_port_free` first: the web processes bind the port with SO_REUSEPORT."""
    options = gunicorn_options(host, port, workers or DEFAULT_WORKERS, threads or DEFAULT_THREADS)
    embedded = EmbeddedWorker() if embedded_worker else None
    wake_write = None
    if embedded is not None:
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        embedded.start(wake_read)
        options["on_exit"] = lambda _arbiter: embedded.stop(timeout=options["graceful_timeout"])
    _App(options, settings, wake_write).run()


def run_embedded_worker(settings: Settings, wake_fd: int | None) -> None:
    """The worker process: the scheduler drives the runtime; every byte on the wake pipe asks for a tick
    now (coalesced by the scheduler). SIGTERM stops it after the tick in progress."""
    runtime = build_runtime(settings, make_session_factory(make_engine(settings.database_url)))
    gc.freeze()  # as in a web process (_App.load): start-up's objects, out of the collector's full passes
    sched = scheduler.blocking(runtime)
    signal.signal(signal.SIGTERM, lambda *_: sched.shutdown(wait=False))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C reaches us too: let it stop us by SIGTERM
    parent = os.getppid()
    if wake_fd is not None:
        threading.Thread(target=_read_wakes, args=(wake_fd, runtime, parent), name="wake-pipe", daemon=True).start()
    sched.start()


def _read_wakes(fd: int, runtime: Runtime, parent: int) -> None:
    while True:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if os.getppid() != parent:  # the server died without stopping us
            os.kill(os.getpid(), signal.SIGTERM)
            return
        if not ready:
            continue
        if not os.read(fd, 4096):  # every web process and the server closed it
            return
        runtime.wake()


def _main() -> None:
    if sys.argv[1:] != ["--embedded-worker"]:
        raise SystemExit("usage: python -m automations.serving --embedded-worker (started by `automations serve`)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("apscheduler", "twilio.http_client"):  # as `automations worker` does
        logging.getLogger(noisy).setLevel(logging.WARNING)
    fd = os.environ.get(WAKE_FD_ENV)
    run_embedded_worker(Settings.from_env(), int(fd) if fd else None)


if __name__ == "__main__":
    _main()
