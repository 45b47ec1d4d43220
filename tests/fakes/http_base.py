"""The plumbing every local fake HTTP service shares (contract ``EXTERNAL_APIS.md`` §0).

A fake binds ``127.0.0.1`` on a free port (port 0, read back after bind, so there is no pick-then-bind
race), serves from a ``ThreadingHTTPServer`` thread, records every request, and is a context manager::

    with FakeSlack() as slack:
        ...  # slack.base_url == "http://127.0.0.1:<port>"

Subclasses implement :meth:`FakeHttpServer.handle`. Tests wait for requests with
:meth:`FakeHttpServer.wait_for_requests` (a condition with a bounded timeout, never a sleep).
"""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RecordedRequest:
    method: str
    target: str  # the raw request target: path and query string exactly as sent
    headers: dict[str, str]
    body: bytes
    form: dict[str, list[str]] = field(default_factory=dict)  # form-encoded bodies, repeated fields kept
    auth: tuple[str, str] | None = None  # HTTP Basic credentials, if sent

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def form_value(self, name: str) -> str | None:
        values = self.form.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
        )

    @classmethod
    def text(
        cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8", **headers: str
    ) -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type, **headers})


def _parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


class FakeHttpServer:
    """Base class: start/stop, request recording, waiting. Override :meth:`handle`."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> FakeHttpServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes; without TCP_NODELAY the body waits ~40 ms
            # for the client's delayed ACK on every request.
            disable_nagle_algorithm = True
            timeout = 10  # a stuck keep-alive connection must not outlive the test by much

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                form: dict[str, list[str]] = {}
                if (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                    form = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
                request = RecordedRequest(
                    self.command,
                    self.path,
                    headers,
                    body,
                    form,
                    _parse_basic(self.headers.get("Authorization")),
                )
                fake._record(request)
                reply = fake.handle(request)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            # A short poll interval keeps stop() (and so every test teardown) fast.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "fake not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- recording --------------------------------------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived (AssertionError after ``timeout`` seconds)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.requests)} within {timeout}s")
            return list(self.requests)

    def handle(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError
