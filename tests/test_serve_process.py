"""The README's path, as a process: ``automations demo`` then ``automations serve`` on a free port;
booking through the API puts the confirmation in the capture outbox within moments (embedded worker)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent / "automations"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str):
    """Poll a condition with a deadline (this waits on another process, not on time itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_demo_then_serve_books_and_captures(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "PUNCTUAL_DEMO_API_KEY": "pk_serve_demo",
           "PUNCTUAL_TICK_SECONDS": "0.2"}
    subprocess.run([str(BIN), "demo"], env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    headers = {"Authorization": "Bearer pk_serve_demo"}
    try:
        def healthy():
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 30, "the server to answer /healthz")
        with httpx.Client(base_url=f"{base}/api/v1", headers=headers, timeout=10) as api:
            calendar = api.get("/calendars").json()["items"][0]
            contact = next(c for c in api.get("/contacts").json()["items"] if c["email"] == "dana@example.com")
            booked = api.post("/appointments", json={"calendar_id": calendar["id"], "contact_id": contact["id"],
                                                      "start_time": "2031-03-03T15:00:00-05:00"})
            assert booked.status_code == 201, booked.text

            def confirmation():
                items = api.get("/messages", params={"channel": "email"}).json()["items"]
                return next((m for m in items if m["status"] == "sent"), None)

            email = wait_for(confirmation, 20, "the captured confirmation email")
            assert "Hi Dana" in email["body"] and "sandbox.punctual.invalid/zoom" in email["body"]
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_serve_runs_gunicorn_with_one_embedded_worker_woken_by_bookings_and_stops_gracefully(tmp_path):
    """Two web processes, ONE embedded worker; connections spread over both web processes; a booking on
    either web process wakes the worker (the tick timer is set far beyond the test, so only the wake
    can deliver the confirmation); no version in the Server header; SIGTERM stops the server, its web processes and the worker, with exit code 0."""
    psutil = pytest.importorskip("psutil")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "PUNCTUAL_DEMO_API_KEY": "pk_serve_demo",
           "PUNCTUAL_TICK_SECONDS": "3600"}
    subprocess.run([str(BIN), "demo"], env=env, check=True, capture_output=True, timeout=60)
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "2", "--threads", "4"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def health():
            try:
                return httpx.get(f"{base}/healthz", timeout=1)
            except httpx.HTTPError:
                return None

        answer = wait_for(health, 30, "the server to answer /healthz")
        server_header = answer.headers.get("server", "")
        assert "werkzeug" not in server_header.lower() and not any(ch.isdigit() for ch in server_header)
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"

        def tree():
            children = psutil.Process(proc.pid).children(recursive=True)
            workers = [c for c in children if "--embedded-worker" in " ".join(c.cmdline())]
            return (len(children) - len(workers) == 2 and len(workers) == 1) and children

        children = wait_for(tree, 30, "two web processes and one embedded worker")
        web = [c for c in children if "--embedded-worker" not in " ".join(c.cmdline())]

        def listening(p) -> set[int]:
            """The inodes of the sockets ``p`` listens on at the port (one socket inherited by two
            processes is one inode in both)."""
            return {os.stat(f"/proc/{p.pid}/fd/{c.fd}").st_ino for c in p.net_connections("tcp")
                    if c.status == psutil.CONN_LISTEN and c.laddr.port == port}

        # Each web process listens on its own socket (SO_REUSEPORT), and the kernel spreads connections
        # over them. On one shared socket, whichever process was already awake took every connection of
        # a burst. Sixteen keep-alive clients are served by both processes.
        first, second = (listening(p) for p in web)
        assert len(first) == len(second) == 1 and first != second
        clients = [httpx.Client(base_url=base, timeout=10) for _ in range(16)]
        try:
            for client in clients:
                assert client.get("/healthz").status_code == 200

            def served_by() -> list[int] | None:
                counts = [sum(1 for c in p.net_connections("tcp") if c.status == psutil.CONN_ESTABLISHED
                              and c.laddr.port == port) for p in web]
                return counts if sum(counts) == 16 else None

            counts = wait_for(served_by, 10, "16 connections held open")
            assert min(counts) > 0, counts  # all on one process by chance: 2 in 2**16
        finally:
            for client in clients:
                client.close()
        with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": "Bearer pk_serve_demo"},
                          timeout=10) as api:
            calendar = api.get("/calendars").json()["items"][0]
            for i, start in enumerate(("2031-03-03T15:00:00-05:00", "2031-03-04T15:00:00-05:00")):
                booked = api.post("/appointments", json={"calendar_id": calendar["id"], "start_time": start,
                                                          "contact": {"email": f"wake{i}@example.com"}})
                assert booked.status_code == 201, booked.text

            def confirmations():
                items = api.get("/messages", params={"channel": "email"}).json()["items"]
                sent = {m["to"] for m in items if m["status"] == "sent"}
                return {"wake0@example.com", "wake1@example.com"} <= sent

            wait_for(confirmations, 15, "both confirmations, sent on a wake (the timer is an hour)")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        output = proc.stdout.read().decode()
        assert "Traceback" not in output and "maximum number of running instances" not in output
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
