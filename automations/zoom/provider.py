"""The Zoom meeting provider: each host's own Zoom account, through :class:`providers.zoom_client.ZoomClient`.

The database half of Zoom (token storage, refresh leases, the daily budget); the HTTP half is
``providers.zoom_client`` and ``providers.zoom_meetings`` (the client built from settings).

For every call it looks up the host's :class:`~automations.store.models.ZoomConnection`, decrypts the tokens and:

* refreshes the access token ahead of expiry (60 s, as Zoom's Rivet SDK does), or after a 401 (once). Zoom
  rotates the refresh token on every refresh, so one refresh at a time per credential: a thread lock inside
  this process, and the connection's ``refresh_owner`` / ``refresh_expires_at`` lease across processes. Whoever
  holds the lease refreshes and stores the new pair (encrypted) before using it; the others wait and re-read.
* counts every meeting create/update/delete in the connection's ``budget_used`` for the UTC day *before*
  calling Zoom, so a crash can over-count but never under-count (100 per user per UTC day, contract §1.7).
  A Zoom daily-limit 429 sets the count to the limit, whatever we thought.
* translates Zoom's errors into the meeting errors of ``automations.errors``: :class:`MeetingDailyLimit` (defer to 00:00
  UTC), :class:`MeetingRateLimited` (Retry-After), :class:`MeetingConnectionBroken` (``invalid_grant``: the
  user must reconnect), :class:`MeetingHostNotConnected` (no usable connection: permanent, the fallback
  applies), :class:`MeetingNotFound` (404 / 3001: recreate if still needed), and retryable / permanent
  :class:`ProviderError` for the rest. ``automations.zoom.meeting_jobs`` decides what each means for the meeting.

Meetings Punctual did not create are never read or imported: only ids it stored are used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from automations.clock import Clock, SystemClock
from automations.errors import (
    MeetingConnectionBroken,
    MeetingDailyLimit,
    MeetingHostNotConnected,
    MeetingNotFound,
    MeetingRateLimited,
    PermanentProviderError,
    RetryableProviderError,
)
from automations.settings import Settings
from automations.store.db import is_postgres, worker_id
from automations.store.models import ZoomConnection
from automations.store.secrets_box import SecretDecryptionError, SecretsBox
from automations.zoom import connections as zoom_connections
from providers.base import MeetingInfo, MeetingRequest
from providers.zoom_client import (
    REFRESH_MARGIN,
    ZoomAuthError,
    ZoomClient,
    ZoomConnectionBroken,
    ZoomDailyLimitExceeded,
    ZoomError,
    ZoomMeetingNotFound,
    ZoomRateLimited,
    next_utc_midnight,
)
from providers.zoom_meetings import make_client

log = logging.getLogger(__name__)
T = TypeVar("T")

def make_box(settings: Settings) -> SecretsBox:
    return SecretsBox(settings.secret_key)


class ZoomMeetings:
    """A :class:`providers.base.MeetingProvider` over each host's own Zoom connection."""

    name = "zoom"

    def __init__(
        self,
        factory: sessionmaker[Session],
        client: ZoomClient,
        box: SecretsBox,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
        daily_budget: int = zoom_connections.DAILY_BUDGET,
        refresh_lease: timedelta = timedelta(seconds=60),
        wait_seconds: float = 20.0,
        poll_seconds: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.factory = factory
        self.client = client
        self.box = box
        self.clock: Clock = clock or SystemClock()
        self.owner = owner or worker_id()
        self.daily_budget = daily_budget
        self.refresh_lease = refresh_lease
        #: How long (real seconds) to wait for another process's refresh before giving up for now.
        self.wait_seconds = wait_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.connections = zoom_connections.ZoomConnections(factory, client, box)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, factory: sessionmaker[Session], *, clock: Clock | None = None,
                      http: httpx.Client | None = None, **kw: Any) -> ZoomMeetings:
        return cls(factory, make_client(settings, clock=clock, http=http), make_box(settings), clock=clock, **kw)

    def __repr__(self) -> str:
        return f"ZoomMeetings(owner={self.owner!r})"

    # -- MeetingProvider ---------------------------------------------------------------------------

    def create(self, request: MeetingRequest) -> MeetingInfo:
        meeting = self._call(request.host_user_id, "create",
                             lambda token: self.client.create_meeting(token, request), charged=True)
        return MeetingInfo(meeting.external_id, meeting.join_url)

    def update(self, host_user_id: str, external_id: str, request: MeetingRequest) -> None:
        """PATCH the meeting (time, duration, topic). :class:`MeetingNotFound` when it is gone at Zoom."""
        self._call(host_user_id, "update",
                   lambda token: self.client.update_meeting(token, external_id, request), charged=True)

    def delete(self, host_user_id: str, external_id: str) -> None:
        """Delete it at Zoom; a meeting already gone counts as deleted. Allowed while disconnecting."""
        self._call(host_user_id, "delete", lambda token: self.client.delete_meeting(token, external_id),
                   charged=True, disconnecting_ok=True)

    def ensure(self, host_user_id: str, external_id: str, request: MeetingRequest) -> MeetingInfo:
        """Check that a meeting we created still exists (GET: not part of the daily budget) and return its
        current link; :class:`MeetingNotFound` when it was deleted in Zoom."""
        meeting = self._call(host_user_id, "get", lambda token: self.client.get_meeting(token, external_id),
                             charged=False)
        return MeetingInfo(meeting.external_id, meeting.join_url)

    def housekeeping(self, now: datetime) -> None:
        """After each meeting batch: finish disconnects whose meeting deletions are done."""
        self.connections.finish_disconnects(now)

    # -- one call, with its token, budget and error translation ------------------------------------

    def _call(self, host: str, op: str, fn: Callable[[str], T], *, charged: bool, disconnecting_ok: bool = False) -> T:
        token = self._access_token(host, disconnecting_ok=disconnecting_ok)
        for attempt in (1, 2):
            if charged:
                self._charge(host, op)
            try:
                return fn(token)
            except ZoomAuthError as exc:
                if attempt == 2:
                    raise MeetingConnectionBroken(
                        f"Zoom refused a freshly refreshed access token ({exc.message})", host_user_id=host) from exc
                token = self._access_token(host, disconnecting_ok=disconnecting_ok, stale=token)
            except ZoomMeetingNotFound as exc:
                raise MeetingNotFound(exc.message, provider_code=exc.provider_code) from exc
            except ZoomDailyLimitExceeded as exc:
                now = self.clock.now()
                self._exhaust(host, now)
                raise MeetingDailyLimit(exc.message, retry_at=exc.retry_at or next_utc_midnight(now),
                                        retry_after=exc.retry_after, provider_code=exc.provider_code) from exc
            except ZoomRateLimited as exc:
                retry_at = exc.retry_at or self.clock.now() + timedelta(seconds=exc.retry_after or 1)
                raise MeetingRateLimited(exc.message, retry_at=retry_at, retry_after=exc.retry_after,
                                         provider_code=exc.provider_code) from exc
            except ZoomConnectionBroken as exc:  # includes invalid_grant
                raise MeetingConnectionBroken(exc.message, host_user_id=host, provider_code=exc.provider_code) from exc
            except ZoomError as exc:
                cls = RetryableProviderError if exc.retryable else PermanentProviderError
                raise cls(exc.message, provider_code=exc.provider_code, retry_after=exc.retry_after) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- the daily budget --------------------------------------------------------------------------

    def _charge(self, host: str, op: str) -> None:
        """Count one create/update/delete for today before it is sent; refuse when the day's are spent."""
        now = self.clock.now()
        day = zoom_connections.utc_day(now)
        with self.factory() as session, session.begin():
            conn = self._load(session, host, lock=True)
            if conn is None:
                raise MeetingHostNotConnected(f"the host's Zoom connection is gone (before {op})")
            if conn.budget_day != day:
                conn.budget_day, conn.budget_used = day, 0
            spent = conn.budget_used >= self.daily_budget
            if not spent:
                conn.budget_used += 1
        if spent:
            raise MeetingDailyLimit(
                f"the host's {self.daily_budget} Zoom meeting requests for {day} (UTC) are used up",
                retry_at=next_utc_midnight(now))

    def _exhaust(self, host: str, now: datetime) -> None:
        day = zoom_connections.utc_day(now)
        with self.factory() as session, session.begin():
            conn = self._load(session, host, lock=True)
            if conn is not None:
                used = conn.budget_used if conn.budget_day == day else 0
                conn.budget_day, conn.budget_used = day, max(used, self.daily_budget)

    # -- tokens ------------------------------------------------------------------------------------

    def _lock_for(self, host: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(host, threading.Lock())

    def _load(self, session: Session, host: str, *, lock: bool = False) -> ZoomConnection | None:
        query = select(ZoomConnection).where(ZoomConnection.user_id == host)
        if lock and is_postgres(session):
            query = query.with_for_update()
        return session.scalar(query)

    def _usable(self, conn: ZoomConnection | None, *, disconnecting_ok: bool) -> ZoomConnection:
        allowed = (zoom_connections.ACTIVE, zoom_connections.DISCONNECTING) if disconnecting_ok else (zoom_connections.ACTIVE,)
        if conn is None:
            raise MeetingHostNotConnected("the host has not connected a Zoom account")
        if conn.status not in allowed or not conn.access_token_enc or not conn.refresh_token_enc:
            why = conn.status_reason or conn.status
            raise MeetingHostNotConnected(f"the host's Zoom connection is not usable ({why}); they must reconnect")
        return conn

    def _decrypt(self, host: str, value: str | None) -> str:
        if not value:
            raise MeetingConnectionBroken("no Zoom token is stored for this connection", host_user_id=host)
        try:
            return self.box.decrypt(value)
        except SecretDecryptionError as exc:
            raise MeetingConnectionBroken("the stored Zoom tokens cannot be decrypted (secret key changed?)",
                                          host_user_id=host) from exc

    def _access_token(self, host: str, *, disconnecting_ok: bool, stale: str | None = None) -> str:
        """A usable access token for the host: the stored one, or a fresh one if it expires within a minute
        (or is ``stale``: Zoom just refused it). One refresher per credential; the others re-read."""
        deadline = time.monotonic() + self.wait_seconds
        with self._lock_for(host):
            while True:
                now = self.clock.now()
                refresh_token: str | None = None
                with self.factory() as session, session.begin():
                    conn = self._usable(self._load(session, host, lock=True), disconnecting_ok=disconnecting_ok)
                    access = self._decrypt(host, conn.access_token_enc)
                    fresh = conn.expires_at is not None and now < conn.expires_at - REFRESH_MARGIN
                    if fresh and (stale is None or access != stale):
                        return access
                    lease_free = (conn.refresh_owner is None or conn.refresh_owner == self.owner
                                  or conn.refresh_expires_at is None or conn.refresh_expires_at <= now)
                    if lease_free:
                        conn.refresh_owner, conn.refresh_expires_at = self.owner, now + self.refresh_lease
                        refresh_token = self._decrypt(host, conn.refresh_token_enc)
                if refresh_token is not None:
                    new_access = self._refresh(host, refresh_token, now)
                    if new_access is not None:
                        return new_access
                    stale = None  # someone else rotated the pair meanwhile: re-read it
                    continue
                if time.monotonic() >= deadline:
                    raise RetryableProviderError("another worker is refreshing this host's Zoom token; retrying later")
                self.sleep(self.poll_seconds)

    def _refresh(self, host: str, refresh_token: str, now: datetime) -> str | None:
        """Refresh under the lease, persist the rotated pair, release the lease. None when the refresh token
        had already been rotated by someone else (re-read and use theirs)."""
        try:
            tokens = self.client.refresh(refresh_token, now=now)
        except ZoomConnectionBroken as exc:  # invalid_grant, or the Zoom user is gone
            rotated_elsewhere = self._release(host, refresh_token)
            if rotated_elsewhere:
                return None
            raise MeetingConnectionBroken(f"Zoom refused to refresh the token ({exc.message})",
                                          host_user_id=host, provider_code=exc.provider_code) from exc
        except ZoomError as exc:
            self._release(host, refresh_token)
            cls = RetryableProviderError if exc.retryable else PermanentProviderError
            raise cls(f"Zoom token refresh failed: {exc.message}", provider_code=exc.provider_code,
                      retry_after=exc.retry_after) from exc
        # Persist before use: the old refresh token is dead from this moment on.
        with self.factory() as session, session.begin():
            conn = self._load(session, host, lock=True)
            if conn is None:
                raise MeetingHostNotConnected("the host's Zoom connection was removed during a token refresh")
            conn.access_token_enc = self.box.encrypt(tokens.access_token)
            conn.refresh_token_enc = self.box.encrypt(tokens.refresh_token)
            conn.expires_at = tokens.expires_at
            conn.scope = tokens.scope or conn.scope
            conn.refresh_owner = conn.refresh_expires_at = None
            conn.updated_at = now
        return tokens.access_token

    def _release(self, host: str, used_refresh_token: str) -> bool:
        """Give the lease back after a failed refresh. True when the stored refresh token is no longer the
        one we used: another worker rotated it, so our failure says nothing about the connection."""
        with self.factory() as session, session.begin():
            conn = self._load(session, host, lock=True)
            if conn is None:
                return False
            if conn.refresh_owner == self.owner:
                conn.refresh_owner = conn.refresh_expires_at = None
            if not conn.refresh_token_enc:
                return False
            try:
                return self.box.decrypt(conn.refresh_token_enc) != used_refresh_token
            except SecretDecryptionError:
                return False
