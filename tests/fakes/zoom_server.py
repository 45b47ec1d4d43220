"""A local fake Zoom (OAuth + REST v2 + signed webhooks) for tests and offline development.

It follows contract ``/work/shared/contracts/EXTERNAL_APIS.md`` §1; the checklist (§1.9) maps to:

* ``GET /oauth/authorize`` (§1.1 step 1): checks ``client_id``/``redirect_uri``/``response_type`` and
  redirects (302) to ``redirect_uri?code=...&state=...`` for the "logged-in" fake user (:meth:`login_as`).
  :meth:`mint_code` mints a code directly, skipping the browser. Codes are single-use and live 5 minutes.
* ``POST /oauth/token`` (§1.1 steps 2-3): Basic client auth (``invalid_client``, 401), form body
  ``authorization_code`` (+ PKCE S256 ``code_verifier``) and ``refresh_token`` grants. Refresh **rotates**:
  the old refresh token stops working (400 ``{"reason":"Invalid Token!","error":"invalid_grant"}``).
  A bad/used/expired code gets 400 ``{"reason":"Invalid authorization code <code>","error":"invalid_request"}``.
* ``POST /oauth/revoke`` -> ``{"status":"success"}``; revokes the whole grant the token belongs to.
* ``GET /v2/users/me`` (§1.3), ``POST /v2/users/me/meetings`` (201, §1.4), ``GET``/``PATCH`` (204)/
  ``DELETE`` (204) ``/v2/meetings/{id}`` (§1.5, §1.6), ``{"code","message"}`` errors: 124 for a bad or
  expired bearer (401), 3001 for an unknown meeting (404), 300 for validation (400), 4711 for a missing scope.
* Per-user counter of meeting create/update/delete requests per UTC day (§1.7): request 101 gets 429 with
  the daily-limit message, ``X-RateLimit-Type: Daily-limit`` and ``Retry-After`` = next 00:00 UTC (ISO).
* :meth:`throttle` answers the next N API requests with the per-second 429 (``Retry-After: 1``, ``QPS``);
  :meth:`fail_next` with a 5xx; :meth:`delete_meeting_externally` deletes a meeting behind the app's back.
* :meth:`send_webhook`, :meth:`send_url_validation`, :meth:`send_app_deauthorized` POST events signed
  exactly like Zoom (§1.8: ``x-zm-signature`` / ``x-zm-request-timestamp``, compact JSON) to any URL.

Time comes from an injectable :class:`automations.clock.Clock` (``FrozenClock`` in tests), so token expiry,
the 5-minute code lifetime, the UTC-day counter and webhook timestamps are all driven by the test.

Usage::

    with FakeZoom(clock=clock) as zoom:           # binds 127.0.0.1 on a free port, serves on a thread
        user = zoom.add_user(email="host@example.com")
        client = ZoomClient(client_id=zoom.client_id, client_secret=zoom.client_secret,
                            redirect_uri=zoom.redirect_uri, api_base=zoom.api_base,
                            oauth_base=zoom.oauth_base)
        tokens = client.exchange_code(zoom.mint_code(user.id), now=clock.now())
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
import secrets
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from automations.clock import Clock, SystemClock, ensure_utc

DEFAULT_CLIENT_ID = "fake-zoom-client-id"
DEFAULT_CLIENT_SECRET = "fake-zoom-client-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1/integrations/zoom/callback"
DEFAULT_WEBHOOK_SECRET = "fake-zoom-webhook-secret"

GRANULAR_SCOPES = (
    "meeting:write:meeting",
    "meeting:update:meeting",
    "meeting:delete:meeting",
    "meeting:read:meeting",
    "user:read:user",
)
# Which granted scope (granular, or the classic equivalent) each REST operation needs (contract §1.2).
_NEEDS = {
    "get_user": ("user:read:user", "user:read"),
    "create": ("meeting:write:meeting", "meeting:write"),
    "get": ("meeting:read:meeting", "meeting:read", "meeting:write"),
    "update": ("meeting:update:meeting", "meeting:write"),
    "delete": ("meeting:delete:meeting", "meeting:write"),
}

CODE_TTL = timedelta(minutes=5)
DAILY_LIMIT_MESSAGE = (
    "You have exceeded the daily rate limit ({limit}) of Meeting Create/Update API requests permitted for "
    "this particular user. You may resume these requests at GMT 00:00:00."
)
QPS_MESSAGE = "You have reached the maximum per-second rate limit for this API. Try again later."
_START_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z)?$")


@dataclass
class FakeZoomUser:
    id: str
    email: str
    account_id: str
    first_name: str = "Jill"
    last_name: str = "Chill"
    timezone: str = "America/New_York"
    type: int = 2
    scopes: tuple[str, ...] = GRANULAR_SCOPES  # what an authorization by this user grants

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "display_name": f"{self.first_name} {self.last_name}".strip(),
            "email": self.email,
            "type": self.type,
            "pmi": 3542471135,
            "timezone": self.timezone,
            "verified": 1,
            "dept": "",
            "created_at": "2019-06-01T07:58:03Z",
            "user_created_at": "2019-06-01T07:58:03Z",
            "last_login_time": "2019-06-01T07:58:03Z",
            "language": "en-US",
            "status": "active",
            "role_id": "0",
            "account_id": self.account_id,
            "account_number": 10009239,
        }


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Code:
    user_id: str
    redirect_uri: str
    code_challenge: str | None
    expires_at: datetime
    used: bool = False


@dataclass
class _Grant:
    user_id: str
    scope: str
    refresh_token: str | None = None
    access_tokens: set[str] = field(default_factory=set)


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _utc(value: datetime) -> str:
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json_reply(status: int, obj: Any, headers: dict[str, str] | None = None) -> _Reply:
    hdrs = {"Content-Type": "application/json;charset=UTF-8"}
    hdrs.update(headers or {})
    return _Reply(status, json.dumps(obj).encode(), hdrs)


def _zoom_error(status: int, code: int, message: str, **extra: Any) -> _Reply:
    return _json_reply(status, {"code": code, "message": message, **extra})


def _oauth_error(status: int, error: str, reason: str) -> _Reply:
    return _json_reply(status, {"reason": reason, "error": error})


def compact_json(obj: Any) -> bytes:
    """Zoom's webhook encoding: no spaces after separators (what the signature is computed over)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Zoom's ``x-zm-signature`` (computed here independently of ``providers.zoom_webhooks``)."""
    message = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive like the real thing; every reply carries Content-Length
    timeout = 30  # an idle kept-alive connection frees its thread after this

    server: _Server

    def setup(self) -> None:
        super().setup()
        # Without this, Nagle's algorithm plus delayed ACKs adds ~40 ms to every keep-alive exchange.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.fake._handle(self.command, self.path, dict(self.headers.items()), body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.body and self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib signature, hence "format"
        return None  # keep pytest output clean; the fake records requests itself


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeZoom


class FakeZoom:
    """The fake. Start with ``with FakeZoom() as zoom`` (or :meth:`start` / :meth:`close`)."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        redirect_uris: Iterable[str] = (DEFAULT_REDIRECT_URI,),
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        access_token_ttl: int = 3599,
        daily_limit: int = 100,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = list(redirect_uris)
        self.webhook_secret = webhook_secret
        self.access_token_ttl = access_token_ttl
        self.daily_limit = daily_limit

        self.users: dict[str, FakeZoomUser] = {}
        self.meetings: dict[int, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self.revoked: list[str] = []
        self.errors: list[Exception] = []  # exceptions raised while handling (should stay empty)

        self._lock = threading.RLock()
        self._logged_in: str | None = None
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, tuple[_Grant, datetime]] = {}
        self._refresh: dict[str, _Grant] = {}
        self._daily: dict[tuple[str, str], int] = {}
        self._meeting_ids = itertools.count(85746065432)
        self._user_ids = itertools.count(1)
        self._throttle: list[str | None] = []  # one Retry-After value per request still to throttle
        self._failures: list[int] = []  # one status per request still to fail
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeZoom:
        # Port 0: the OS picks a free port atomically (no pick-then-bind race).
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-zoom", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeZoom:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeZoom is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def oauth_base(self) -> str:
        """Pass as ``ZoomClient(oauth_base=...)`` (production: ``https://zoom.us``)."""
        return self.base_url

    @property
    def api_base(self) -> str:
        """Pass as ``ZoomClient(api_base=...)`` (production: ``https://api.zoom.us/v2``)."""
        return f"{self.base_url}/v2"

    @property
    def redirect_uri(self) -> str:
        return self.redirect_uris[0]

    # ------------------------------------------------------------------------------------- test knobs

    def add_user(
        self,
        *,
        email: str | None = None,
        user_id: str | None = None,
        account_id: str | None = None,
        scopes: Iterable[str] = GRANULAR_SCOPES,
        timezone: str = "America/New_York",
        first_name: str = "Jill",
        last_name: str = "Chill",
    ) -> FakeZoomUser:
        """Create a Zoom user. The first user added is the one "logged in" for ``/oauth/authorize``."""
        with self._lock:
            n = next(self._user_ids)
            user = FakeZoomUser(
                id=user_id or f"zu{n:03d}{secrets.token_hex(8)}",
                email=email or f"host{n}@example.com",
                account_id=account_id or f"acct{n:03d}{secrets.token_hex(6)}",
                first_name=first_name,
                last_name=last_name,
                timezone=timezone,
                scopes=tuple(scopes),
            )
            self.users[user.id] = user
            if self._logged_in is None:
                self._logged_in = user.id
            return user

    def login_as(self, user_id: str) -> None:
        """Which user the browser is signed in as when it reaches ``/oauth/authorize``."""
        with self._lock:
            if user_id not in self.users:
                raise KeyError(user_id)
            self._logged_in = user_id

    def mint_code(
        self, user_id: str, *, redirect_uri: str | None = None, code_challenge: str | None = None
    ) -> str:
        """An authorization code for ``user_id``, as if they had approved the app in the browser."""
        with self._lock:
            if user_id not in self.users:
                raise KeyError(user_id)
            code = "fakecode" + secrets.token_urlsafe(16)
            self._codes[code] = _Code(
                user_id=user_id,
                redirect_uri=redirect_uri or self.redirect_uri,
                code_challenge=code_challenge,
                expires_at=self.clock.now() + CODE_TTL,
            )
            return code

    def throttle(self, count: int = 1, *, retry_after: str | None = "1") -> None:
        """The next ``count`` ``/v2`` requests get the per-second 429. ``retry_after=None`` omits the
        header (contract §1.7: it is sometimes missing in reality)."""
        with self._lock:
            self._throttle.extend([retry_after] * count)

    def fail_next(self, count: int = 1, *, status: int = 503) -> None:
        """The next ``count`` requests (any endpoint) get ``status`` with a Zoom-shaped body."""
        with self._lock:
            self._failures.extend([status] * count)

    def delete_meeting_externally(self, meeting_id: int | str) -> None:
        """Delete a meeting as the host would in Zoom's UI: the app is not told."""
        with self._lock:
            del self.meetings[int(meeting_id)]

    def expire_access_tokens(self, user_id: str | None = None) -> None:
        """Make current access tokens (of one user, or all) expired: the next call gets 401/124."""
        with self._lock:
            past = self.clock.now() - timedelta(seconds=1)
            for token, (grant, _) in list(self._access.items()):
                if user_id is None or grant.user_id == user_id:
                    self._access[token] = (grant, past)

    def invalidate_refresh_tokens(self, user_id: str) -> None:
        """Kill a user's refresh tokens (expired, or rotated elsewhere): the next refresh is invalid_grant."""
        with self._lock:
            for token, grant in list(self._refresh.items()):
                if grant.user_id == user_id:
                    del self._refresh[token]
                    grant.refresh_token = None

    def meeting_requests_today(self, user_id: str) -> int:
        """Create/update/delete requests charged to ``user_id`` in the current UTC day."""
        with self._lock:
            return self._daily.get((user_id, self._today()), 0)

    def set_meeting_requests_today(self, user_id: str, count: int) -> None:
        with self._lock:
            self._daily[(user_id, self._today())] = count

    def meetings_of(self, user_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self.meetings.values() if m["host_id"] == user_id]

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.path.startswith(path_prefix) and (method is None or r.method == method)
            ]

    # -------------------------------------------------------------------------------------- webhooks

    def send_webhook(
        self,
        url: str,
        event: str,
        payload: dict[str, Any],
        *,
        event_ts: int | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
        tamper: bool = False,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        """POST a signed event to ``url`` like Zoom does. ``timestamp`` defaults to the fake clock;
        ``secret`` to :attr:`webhook_secret`; ``tamper`` changes the body after signing; ``client`` lets a
        test deliver in-process (e.g. ``httpx.Client(transport=httpx.WSGITransport(app=flask_app))``)."""
        now = self.clock.now()
        ts = str(int(now.timestamp()) if timestamp is None else timestamp)
        body = compact_json(
            {"event": event, "event_ts": event_ts or int(now.timestamp() * 1000), "payload": payload}
        )
        headers = {
            "Content-Type": "application/json",
            "x-zm-request-timestamp": ts,
            "x-zm-signature": webhook_signature(secret or self.webhook_secret, ts, body),
            "User-Agent": "Zoom Marketplace/1.0a",
        }
        if tamper:
            body = body.replace(b'"payload":{', b'"payload":{"tampered":true,', 1)
        if client is not None:
            return client.post(url, content=body, headers=headers)
        with httpx.Client(timeout=10) as own:
            return own.post(url, content=body, headers=headers)

    def send_url_validation(
        self, url: str, plain_token: str | None = None, **kw: Any
    ) -> tuple[str, httpx.Response]:
        """Send ``endpoint.url_validation``; returns the plainToken sent and the app's response. Use
        :meth:`expected_encrypted_token` to check the answer."""
        plain = plain_token or secrets.token_urlsafe(16)
        return plain, self.send_webhook(url, "endpoint.url_validation", {"plainToken": plain}, **kw)

    def expected_encrypted_token(self, plain_token: str, secret: str | None = None) -> str:
        return hmac.new(
            (secret or self.webhook_secret).encode(), plain_token.encode(), hashlib.sha256
        ).hexdigest()

    def send_app_deauthorized(
        self,
        url: str,
        user_id: str,
        *,
        revoke: bool = True,
        user_data_retention: str | bool | None = "false",
        **kw: Any,
    ) -> httpx.Response:
        """The user uninstalls the app: revoke their grants here (unless ``revoke=False``) and send
        ``app_deauthorized`` (payload as in contract §1.8)."""
        user = self.users[user_id]
        if revoke:
            with self._lock:
                grants = [g for g, _ in self._access.values()] + list(self._refresh.values())
                for grant in grants:
                    if grant.user_id == user_id:
                        self._revoke_grant(grant)
        payload: dict[str, Any] = {
            "account_id": user.account_id,
            "user_id": user.id,
            "signature": secrets.token_hex(32),
            "deauthorization_time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "client_id": self.client_id,
        }
        if user_data_retention is not None:
            payload["user_data_retention"] = user_data_retention
        return self.send_webhook(url, "app_deauthorized", payload, **kw)

    # ------------------------------------------------------------------------------------- dispatching

    def _handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Reply:
        parts = urlsplit(target)
        path = parts.path
        query = parse_qs(parts.query)
        lower = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, lower, body))
            if self._failures:
                status = self._failures.pop(0)
                return _zoom_error(status, status, "Fake Zoom: injected failure.")
            try:
                reply = self._route(method, path, query, lower, body)
            except Exception as exc:  # a bug in the fake: answer 500 and keep it for the test to see
                self.errors.append(exc)
                reply = _zoom_error(500, 500, f"Fake Zoom crashed: {exc!r}")
            reply.headers.setdefault("x-zm-trackingid", "fake_" + secrets.token_hex(8))
            return reply

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> _Reply:
        if path == "/oauth/authorize" and method == "GET":
            return self._authorize(query)
        if path == "/oauth/token" and method == "POST":
            return self._token(headers, body, query)
        if path == "/oauth/revoke" and method == "POST":
            return self._revoke(headers, body, query)
        if (m := re.fullmatch(r"/j/(\d+)", path)) and method == "GET":
            return self._join_page(int(m.group(1)))
        if path.startswith("/v2/"):
            return self._api(method, path[3:], headers, body)
        return _zoom_error(404, 404, "Not Found")

    # ------------------------------------------------------------------------------------------ OAuth

    def _authorize(self, query: dict[str, list[str]]) -> _Reply:
        q = {k: v[0] for k, v in query.items()}
        if q.get("response_type") != "code":
            return _oauth_error(400, "unsupported_response_type", "Unsupported response type")
        if q.get("client_id") != self.client_id:
            return _oauth_error(400, "invalid_client", "Invalid client_id")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return _zoom_error(400, 4709, "Redirect URI mismatch.")
        challenge = q.get("code_challenge")
        if challenge is not None and q.get("code_challenge_method", "plain") != "S256":
            return _oauth_error(400, "invalid_request", "Only code_challenge_method=S256 is supported")
        if self._logged_in is None:
            return _Reply(401, b"<html>Sign in to Zoom</html>", {"Content-Type": "text/html"})
        code = self.mint_code(self._logged_in, redirect_uri=redirect_uri, code_challenge=challenge)
        params = {"code": code}
        if "state" in q:
            params["state"] = q["state"]
        sep = "&" if "?" in redirect_uri else "?"
        return _Reply(302, b"", {"Location": f"{redirect_uri}{sep}{urlencode(params)}"})

    def _client_ok(self, headers: dict[str, str]) -> bool:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        return hmac.compare_digest(headers.get("authorization", "").encode(), expected.encode())

    def _token(self, headers: dict[str, str], body: bytes, query: dict[str, list[str]]) -> _Reply:
        if not self._client_ok(headers):
            return _oauth_error(401, "invalid_client", "Invalid client_id or client_secret")
        # Zoom also accepts the parameters in the query string (contract §1.1); the form wins.
        params = {k: v[0] for k, v in query.items()}
        params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            return self._grant_code(params)
        if grant_type == "refresh_token":
            grant = self._refresh.pop(params.get("refresh_token", ""), None)
            if grant is None:
                return _oauth_error(400, "invalid_grant", "Invalid Token!")
            return self._issue(grant)
        return _oauth_error(400, "unsupported_grant_type", "Unsupported grant type")

    def _grant_code(self, params: dict[str, str]) -> _Reply:
        code_value = params.get("code", "")
        code = self._codes.get(code_value)
        if code is None or code.used or self.clock.now() > code.expires_at:
            return _oauth_error(400, "invalid_request", f"Invalid authorization code {code_value}")
        if params.get("redirect_uri") != code.redirect_uri:
            return _oauth_error(400, "invalid_request", "Redirect URI mismatch.")
        code.used = True  # single use, even if what follows fails
        if code.code_challenge is not None:
            verifier = params.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or not hmac.compare_digest(computed, code.code_challenge):
                return _oauth_error(400, "invalid_grant", "Invalid code_verifier")
        user = self.users[code.user_id]
        return self._issue(_Grant(user_id=user.id, scope=" ".join(user.scopes)))

    def _issue(self, grant: _Grant) -> _Reply:
        access = "fake-at-" + secrets.token_urlsafe(24)
        refresh = "fake-rt-" + secrets.token_urlsafe(24)
        grant.refresh_token = refresh
        grant.access_tokens.add(access)
        self._refresh[refresh] = grant
        # The previous access token stays valid until it expires (Zoom does not document otherwise).
        self._access[access] = (grant, self.clock.now() + timedelta(seconds=self.access_token_ttl))
        return _json_reply(
            200,
            {
                "access_token": access,
                "token_type": "bearer",
                "refresh_token": refresh,
                "expires_in": self.access_token_ttl,
                "scope": grant.scope,
                "api_url": self.base_url,
            },
        )

    def _revoke(self, headers: dict[str, str], body: bytes, query: dict[str, list[str]]) -> _Reply:
        if not self._client_ok(headers):
            return _oauth_error(401, "invalid_client", "Invalid client_id or client_secret")
        params = {k: v[0] for k, v in query.items()}
        params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        token = params.get("token")
        if not token:
            return _oauth_error(400, "invalid_request", "token is required")
        grant = self._refresh.get(token) or (self._access.get(token) or (None, None))[0]
        if grant is not None:
            self._revoke_grant(grant)
        self.revoked.append(token)
        return _json_reply(200, {"status": "success"})

    def _revoke_grant(self, grant: _Grant) -> None:
        for access in grant.access_tokens:
            self._access.pop(access, None)
        if grant.refresh_token:
            self._refresh.pop(grant.refresh_token, None)
        grant.refresh_token = None
        grant.access_tokens.clear()

    # ------------------------------------------------------------------------------------------- REST

    def _api(self, method: str, path: str, headers: dict[str, str], body: bytes) -> _Reply:
        if self._throttle:
            retry_after = self._throttle.pop(0)
            hdrs = {
                "X-RateLimit-Category": "Light",
                "X-RateLimit-Type": "QPS",
                "X-RateLimit-Limit": "30",
                "X-RateLimit-Remaining": "0",
            }
            if retry_after is not None:
                hdrs["Retry-After"] = retry_after
            return _json_reply(429, {"code": 429, "message": QPS_MESSAGE}, hdrs)

        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        entry = self._access.get(token)
        if entry is None:
            return _zoom_error(401, 124, "Invalid access token.")
        grant, expires_at = entry
        if self.clock.now() >= expires_at:
            return _zoom_error(401, 124, "Access token is expired.")
        user = self.users[grant.user_id]

        if m := re.fullmatch(r"/users/([^/]+)", path):
            if method != "GET":
                return _zoom_error(405, 405, "Method not allowed.")
            return self._scoped(grant, "get_user") or self._get_user(user, m.group(1))
        if m := re.fullmatch(r"/users/([^/]+)/meetings", path):
            if method != "POST":
                return _zoom_error(405, 405, "Method not allowed.")
            if m.group(1) not in ("me", user.id):
                return _zoom_error(404, 1001, f"User does not exist: {m.group(1)}.")
            return self._scoped(grant, "create") or self._charged(user, "Medium") or self._create(user, body)
        if m := re.fullmatch(r"/meetings/([^/]+)", path):
            op = {"GET": "get", "PATCH": "update", "DELETE": "delete"}.get(method)
            if op is None:
                return _zoom_error(405, 405, "Method not allowed.")
            denied = self._scoped(grant, op) or (self._charged(user, "Light") if op != "get" else None)
            if denied:
                return denied
            meeting = self._find_meeting(user, m.group(1))
            if meeting is None:
                return _zoom_error(404, 3001, f"Meeting does not exist: {m.group(1)}.")
            if op == "get":
                return _json_reply(200, meeting, {"X-RateLimit-Category": "Light"})
            if op == "delete":
                del self.meetings[meeting["id"]]
                return _Reply(204)
            return self._update(meeting, body)
        return _zoom_error(404, 404, "Not Found")

    def _scoped(self, grant: _Grant, op: str) -> _Reply | None:
        granted = set(grant.scope.split())
        if granted.intersection(_NEEDS[op]):
            return None
        return _zoom_error(400, 4711, f"Invalid access token, does not contain scopes:[{_NEEDS[op][0]}]")

    def _today(self) -> str:
        return ensure_utc(self.clock.now()).date().isoformat()

    def _charged(self, user: FakeZoomUser, category: str) -> _Reply | None:
        """Charge one meeting create/update/delete to ``user``'s UTC-day budget, or refuse with the
        daily-limit 429 (which is not charged)."""
        key = (user.id, self._today())
        used = self._daily.get(key, 0)
        if used >= self.daily_limit:
            now = ensure_utc(self.clock.now())
            reset = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
            return _json_reply(
                429,
                {"code": 429, "message": DAILY_LIMIT_MESSAGE.format(limit=self.daily_limit)},
                {
                    "X-RateLimit-Category": category,
                    "X-RateLimit-Type": "Daily-limit",
                    "X-RateLimit-Limit": str(self.daily_limit),
                    "X-RateLimit-Remaining": "0",
                    "Retry-After": _utc(reset),
                },
            )
        self._daily[key] = used + 1
        return None

    def _get_user(self, user: FakeZoomUser, user_id: str) -> _Reply:
        if user_id not in ("me", user.id):
            return _zoom_error(404, 1001, f"User does not exist: {user_id}.")
        return _json_reply(200, user.as_json(), {"X-RateLimit-Category": "Light"})

    def _find_meeting(self, user: FakeZoomUser, raw_id: str) -> dict[str, Any] | None:
        # Another host's meeting is reported as missing, like an unknown id.
        meeting = self.meetings.get(int(raw_id)) if raw_id.isdigit() else None
        return meeting if meeting is not None and meeting["host_id"] == user.id else None

    def _parse_body(self, body: bytes) -> dict[str, Any] | _Reply:
        try:
            data = json.loads(body or b"null")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return _zoom_error(400, 300, "Request Body should be a valid JSON object.")
        return data

    def _validate(self, data: dict[str, Any]) -> list[dict[str, str]]:
        errors: list[dict[str, str]] = []

        def bad(name: str) -> None:
            errors.append({"field": name, "message": "Invalid field."})

        if "topic" in data and (not isinstance(data["topic"], str) or len(data["topic"]) > 200):
            bad("topic")
        if "agenda" in data and (not isinstance(data["agenda"], str) or len(data["agenda"]) > 2000):
            bad("agenda")
        if "type" in data and data["type"] not in (1, 2, 3, 8):
            bad("type")
        if "duration" in data and (
            not isinstance(data["duration"], int)
            or isinstance(data["duration"], bool)
            or data["duration"] < 0
        ):
            bad("duration")
        if "timezone" in data:
            try:
                ZoneInfo(str(data["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                bad("timezone")
        if "start_time" in data:
            raw = data["start_time"]
            try:
                if not isinstance(raw, str) or not _START_TIME.match(raw):
                    raise ValueError(raw)
                datetime.fromisoformat(raw.removesuffix("Z"))  # rejects month 13 and the like
            except ValueError:
                bad("start_time")
        if "settings" in data and not isinstance(data["settings"], dict):
            bad("settings")
        return errors

    def _start_time_utc(self, data: dict[str, Any], user: FakeZoomUser, fallback_tz: str | None) -> str:
        raw = data["start_time"]
        if raw.endswith("Z"):
            return raw
        # Local form: read in the given timezone, else the account's (contract §1.4).
        tz = ZoneInfo(str(data.get("timezone") or fallback_tz or user.timezone))
        return _utc(datetime.fromisoformat(raw).replace(tzinfo=tz))

    def _create(self, user: FakeZoomUser, body: bytes) -> _Reply:
        data = self._parse_body(body)
        if isinstance(data, _Reply):
            return data
        errors = self._validate(data)
        if errors:
            return _zoom_error(400, 300, "Validation Failed.", errors=errors)
        now = self.clock.now()
        meeting_id = next(self._meeting_ids)
        password = secrets.token_hex(3)
        encrypted = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        start = self._start_time_utc(data, user, None) if "start_time" in data else _utc(now)
        meeting = {
            "uuid": base64.b64encode(secrets.token_bytes(16)).decode(),
            "id": meeting_id,
            "host_id": user.id,
            "host_email": user.email,
            "topic": data.get("topic", "Zoom Meeting"),
            "type": data.get("type", 2),
            "status": "waiting",
            "start_time": start,
            "duration": data.get("duration", 60),
            "timezone": data.get("timezone", user.timezone),
            "agenda": data.get("agenda", ""),
            "created_at": _utc(now),
            "start_url": f"{self.base_url}/s/{meeting_id}?zak=fakezak{secrets.token_hex(8)}",
            "join_url": f"{self.base_url}/j/{meeting_id}?pwd={encrypted}",
            "password": password,
            "h323_password": "123456",
            "pstn_password": "123456",
            "encrypted_password": encrypted,
            "pre_schedule": False,
            "settings": {"audio": "both", "auto_recording": "none", **(data.get("settings") or {})},
        }
        self.meetings[meeting_id] = meeting
        return _json_reply(201, meeting, {"X-RateLimit-Category": "Medium"})

    def _update(self, meeting: dict[str, Any], body: bytes) -> _Reply:
        data = self._parse_body(body)
        if isinstance(data, _Reply):
            return data
        user = self.users[meeting["host_id"]]
        errors = self._validate(data)
        if errors:
            return _zoom_error(400, 300, "Validation Failed.", errors=errors)
        for key in ("topic", "type", "duration", "timezone", "agenda", "password"):
            if key in data:
                meeting[key] = data[key]
        if "start_time" in data:
            meeting["start_time"] = self._start_time_utc(data, user, meeting["timezone"])
        if "settings" in data:
            meeting["settings"] = {**meeting["settings"], **data["settings"]}
        return _Reply(204, b"", {"X-RateLimit-Category": "Light"})

    def _join_page(self, meeting_id: int) -> _Reply:
        # Lets a browser test follow a join link to something real.
        meeting = self.meetings.get(meeting_id)
        if meeting is None:
            return _Reply(404, b"<html>This meeting link is invalid.</html>", {"Content-Type": "text/html"})
        html = f"<html><title>Fake Zoom</title><body>Fake Zoom meeting {meeting_id}</body></html>"
        return _Reply(200, html.encode(), {"Content-Type": "text/html"})
