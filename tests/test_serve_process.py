"""The README's path, as a process: ``automations demo`` then ``automations serve`` on a free port;
booking through the API puts the confirmation in the capture outbox within moments (embedded worker)."""

from __future__ import annotations

import os
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
