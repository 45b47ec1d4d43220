"""A local fake Google (OAuth 2.0 + Calendar API v3 + push channels) for tests and offline development.

It follows contract ``/work/shared/contracts/EXTERNAL_APIS.md`` §4; the checklist (§4.9) maps to:

* ``GET /o/oauth2/v2/auth`` (§4.1): checks ``client_id``/``redirect_uri``/``response_type``/``scope`` and
  PKCE, and redirects (302) to ``redirect_uri?state=...&code=...&scope=...`` for the "logged-in" account
  (:meth:`FakeGoogle.login_as`). :meth:`FakeGoogle.mint_code` mints a code without a browser. Codes are
  single-use and live 10 minutes [U]. Only ``access_type=offline`` codes yield a refresh token.
  :meth:`FakeGoogle.grant_only` makes the user untick scopes on the consent screen.
* ``POST /token`` (form body, client credentials **in the body**): ``authorization_code`` (+ S256
  ``code_verifier``) and ``refresh_token``. Refresh does **not** rotate (no ``refresh_token`` in the answer)
  unless :attr:`FakeGoogle.rotate_refresh_tokens`. Unknown/dead refresh token or bad code: 400
  ``{"error":"invalid_grant","error_description":...}``; bad client: 401 ``invalid_client``.
* ``POST /revoke?token=...``: revokes the whole grant; an unknown token is 400 ``invalid_token``.
* Calendar v3 under ``/calendar/v3`` with §4.2 error bodies: ``users/me/calendarList`` (paged),
  ``calendars/{id}/events`` insert (client ids checked against base32hex 5-1024; 409 ``duplicate``, also for
  ids of deleted events [U]) / get / patch (merge, arrays replace, ``If-Match`` → 412) / delete (204; 410
  ``deleted``; 404 ``notFound``) / list (filters, ``pageToken`` paging, ``nextSyncToken`` on the last page
  only, ``syncToken`` incremental results including ``cancelled`` events, 410 ``fullSyncRequired`` for an
  expired token), ``freeBusy`` (merged, clipped busy intervals; per-calendar ``notFound``), ``events/watch``
  (``api#channel``, ``expiration`` as a string of ms) and ``channels/stop`` (204). Bearer tokens are checked
  (401 ``authError`` when unknown/expired) and so are scopes (403 ``insufficientPermissions``) and the
  calendar access role (403 ``requiredAccessLevel``).
* Push: every watched calendar change POSTs an empty-body notification with the ``X-Goog-*`` headers of §4.8
  to the channel address; the first message of a channel (number 1) is ``sync``, sent right after the watch.

Test controls (all thread-safe):

* accounts/calendars: :meth:`add_account`, :meth:`add_calendar`, :meth:`login_as`, :meth:`grant_only`;
* tokens: :meth:`expire_access_tokens` (→ 401), :meth:`invalidate_refresh_tokens` (→ ``invalid_grant``),
  :meth:`revoke_access` (the user removed the app), :attr:`rotate_refresh_tokens`;
* failures: :meth:`fail_next` (API or token endpoint; any status/reason, optional ``Retry-After``);
* the host acting "in Google": :meth:`host_creates_event`, :meth:`host_moves_event`, :meth:`host_edits_event`,
  :meth:`host_deletes_event` — each shows up in the next incremental sync and, with ``notify=True``, POSTs an
  ``exists`` notification to every live channel on that calendar (synchronously, so the test can assert at once);
* sync: :meth:`expire_sync_tokens` (next list with those tokens → 410 ``fullSyncRequired``);
* push: :meth:`notify` / :meth:`notify_calendar` send by hand; :attr:`pushes` records every delivery;
  :meth:`wait_for_pushes` waits (bounded) for asynchronous ones (the ``sync`` message and, with
  ``push_on_api_writes=True``, notifications caused by API writes).

Deviations on purpose: watch addresses may be ``http://127.0.0.1``/``localhost`` (Google demands HTTPS), and
time comes from an injectable :class:`automations.clock.Clock` so token expiry and channel expiration are
driven by the test.

Usage::

    with FakeGoogle(clock=clock) as google:
        google.add_account("dr.lee@example.com")
        client = GoogleCalendarClient(client_id=google.client_id, client_secret=google.client_secret,
                                      redirect_uri=google.redirect_uri, oauth_base=google.oauth_base,
                                      token_base=google.token_base, api_base=google.api_base)
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from automations.clock import Clock, SystemClock, ensure_utc
from tests.fakes.http_base import FakeHttpServer, RecordedRequest, Reply

DEFAULT_CLIENT_ID = "fake-google-client-id.apps.googleusercontent.com"
DEFAULT_CLIENT_SECRET = "fake-google-client-secret"
DEFAULT_REDIRECT_URI = "http://127.0.0.1/integrations/google/callback"

SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar"
SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_EVENTS_READONLY = "https://www.googleapis.com/auth/calendar.events.readonly"
SCOPE_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
KNOWN_SCOPES = frozenset(
    {
        SCOPE_CALENDAR,
        SCOPE_EVENTS,
        SCOPE_EVENTS_READONLY,
        SCOPE_READONLY,
        "https://www.googleapis.com/auth/spreadsheets",
        "openid",
        "email",
        "profile",
    }
)
# Which granted scope lets an operation through (calendar discovery document, §4.1).
_NEEDS = {
    "read_events": {SCOPE_CALENDAR, SCOPE_EVENTS, SCOPE_EVENTS_READONLY, SCOPE_READONLY},
    "write_events": {SCOPE_CALENDAR, SCOPE_EVENTS},
    "free_busy": {SCOPE_CALENDAR, SCOPE_READONLY},
    "calendar_list": {SCOPE_CALENDAR, SCOPE_READONLY},
    "channels": {SCOPE_CALENDAR, SCOPE_EVENTS, SCOPE_EVENTS_READONLY, SCOPE_READONLY},
}
_ROLE_RANK = {"freeBusyReader": 0, "reader": 1, "writer": 2, "owner": 3}

CODE_TTL = timedelta(minutes=10)
DEFAULT_CHANNEL_TTL = 604800  # seconds, 7 days (§4.8)
_EVENT_ID = re.compile(r"^[0-9a-v]{5,1024}$")
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"
_SYNC_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)


# ---------------------------------------------------------------------------------------------- model


@dataclass
class FakeCalendar:
    id: str
    owner: str  # the account whose calendar list holds it
    summary: str
    time_zone: str = "UTC"
    access_role: str = "owner"
    primary: bool = False
    resource_id: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # JSON resources as Google returns them
    seq_of: dict[str, int] = field(default_factory=dict)  # event id -> change number of its last change
    change_seq: int = 0


@dataclass
class FakeGoogleAccount:
    email: str
    time_zone: str = "UTC"
    granted: set[str] = field(default_factory=set)  # scopes granted so far (include_granted_scopes)
    calendars: list[str] = field(default_factory=list)  # calendar ids on this account's calendar list

    @property
    def primary(self) -> str:
        return self.email


@dataclass
class PushDelivery:
    channel_id: str
    number: int
    state: str
    address: str
    headers: dict[str, str]
    status: int | None = None  # the receiver's HTTP status; None when it could not be reached
    error: str | None = None


@dataclass
class _Code:
    email: str
    redirect_uri: str
    scope: str
    code_challenge: str | None
    challenge_method: str
    offline: bool
    expires_at: datetime
    used: bool = False


@dataclass
class _Grant:
    email: str
    scope: str
    refresh_token: str | None = None
    access_tokens: set[str] = field(default_factory=set)


@dataclass
class _Channel:
    id: str
    calendar_id: str
    resource_id: str
    resource_uri: str
    address: str
    token: str | None
    expiration: datetime
    email: str
    next_number: int = 1
    stopped: bool = False


@dataclass
class _Cursor:
    """Remaining pages of one list request; the sync token is issued only with the last page."""

    calendar_id: str
    sync_token: str | None  # the syncToken of the request that started it (must be repeated)
    items: list[dict[str, Any]]
    page_size: int
    final_seq: int


# ------------------------------------------------------------------------------------------- helpers


def rfc3339_ms(value: datetime) -> str:
    """``2026-03-01T12:00:00.000Z``: how Google writes ``created``/``updated``/``timeMin``."""
    value = ensure_utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _utc_z(value: datetime) -> str:
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_rfc3339(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(value)
    return ensure_utc(parsed)


def google_error(
    status: int,
    reason: str,
    message: str,
    *,
    domain: str = "global",
    location: str | None = None,
    location_type: str | None = None,
    api_status: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """The common Google API error body (§4.2)."""
    detail: dict[str, Any] = {"domain": domain, "reason": reason, "message": message}
    if location is not None:
        detail["location"] = location
        detail["locationType"] = location_type or "parameter"
    body: dict[str, Any] = {"code": status, "message": message, "errors": [detail]}
    if api_status is not None:
        body["status"] = api_status
    return Reply.json(
        status, {"error": body}, {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}
    )


def oauth_error(status: int, error: str, description: str) -> Reply:
    return Reply.json(status, {"error": error, "error_description": description})


def _html(status: int, text: str) -> Reply:
    return Reply.text(status, f"<html><body>{text}</body></html>", "text/html; charset=utf-8")


def _random_event_id() -> str:
    return "".join(secrets.choice(_BASE32HEX) for _ in range(26))


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Patch semantics (§4.5): objects merge key by key, arrays and scalars replace."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


class _BadRequest(Exception):
    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


# ----------------------------------------------------------------------------------------------- fake


class FakeGoogle(FakeHttpServer):
    """Google OAuth + Calendar v3 on ``127.0.0.1:<ephemeral>``; see the module docstring."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        redirect_uris: Iterable[str] = (DEFAULT_REDIRECT_URI,),
        access_token_ttl: int = 3599,
        push_on_api_writes: bool = False,
        sync_message_on_watch: bool = True,
    ) -> None:
        super().__init__()
        self.clock: Clock = clock or SystemClock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = list(redirect_uris)
        self.access_token_ttl = access_token_ttl
        self.push_on_api_writes = push_on_api_writes
        self.sync_message_on_watch = sync_message_on_watch
        self.rotate_refresh_tokens = False  # Google normally does not rotate (§4.1)
        self.accounts: dict[str, FakeGoogleAccount] = {}
        self.calendars: dict[str, FakeCalendar] = {}
        self.channels: dict[str, _Channel] = {}
        self.pushes: list[PushDelivery] = []
        self.revoked: list[str] = []
        self.errors: list[BaseException] = []  # crashes inside the fake (answered 500)
        self._lock = threading.RLock()
        self._push_cond = threading.Condition(self._lock)
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Grant] = {}
        self._access: dict[str, tuple[_Grant, datetime]] = {}
        self._sync_tokens: dict[str, tuple[str, int]] = {}  # token -> (calendar id, change seq)
        self._expired_sync_tokens: set[str] = set()
        self._cursors: dict[str, _Cursor] = {}
        self._failures: dict[str, list[Reply]] = {"api": [], "token": []}
        self._logged_in: str | None = None
        self._grant_only: set[str] | None = None
        self._etags = itertools.count(1)
        self._push_threads: list[threading.Thread] = []

    # -- urls -------------------------------------------------------------------------------------------

    @property
    def oauth_base(self) -> str:
        return self.base_url

    @property
    def token_base(self) -> str:
        return self.base_url

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/calendar/v3"

    @property
    def redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def stop(self) -> None:
        for thread in list(self._push_threads):
            thread.join(timeout=5)
        super().stop()

    # -- accounts and calendars -------------------------------------------------------------------------

    def add_account(
        self, email: str, *, time_zone: str = "UTC", summary: str | None = None
    ) -> FakeGoogleAccount:
        """A Google account with its primary calendar (id = the e-mail address)."""
        with self._lock:
            account = FakeGoogleAccount(email=email, time_zone=time_zone)
            self.accounts[email] = account
            self._add_calendar(account, email, summary or email, time_zone, "owner", primary=True)
            if self._logged_in is None:
                self._logged_in = email
            return account

    def add_calendar(
        self,
        email: str,
        calendar_id: str,
        summary: str,
        *,
        access_role: str = "owner",
        time_zone: str | None = None,
    ) -> FakeCalendar:
        """Another calendar on ``email``'s calendar list (e.g. a shared one with ``access_role="reader"``)."""
        with self._lock:
            account = self.accounts[email]
            return self._add_calendar(
                account, calendar_id, summary, time_zone or account.time_zone, access_role
            )

    def _add_calendar(
        self, account: FakeGoogleAccount, cid: str, summary: str, tz: str, role: str, *, primary: bool = False
    ) -> FakeCalendar:
        calendar = FakeCalendar(
            id=cid, owner=account.email, summary=summary, time_zone=tz, access_role=role, primary=primary
        )
        self.calendars[cid] = calendar
        account.calendars.append(cid)
        return calendar

    def login_as(self, email: str | None) -> None:
        """Who the browser at ``/o/oauth2/v2/auth`` is signed in as (None: nobody)."""
        self._logged_in = email

    def grant_only(self, scopes: Iterable[str] | None) -> None:
        """The user unticks scopes on the consent screen: later grants hold at most ``scopes``."""
        self._grant_only = set(scopes) if scopes is not None else None

    # -- OAuth controls ---------------------------------------------------------------------------------

    def mint_code(
        self,
        email: str,
        *,
        scopes: Iterable[str] = (SCOPE_EVENTS, SCOPE_READONLY),
        redirect_uri: str | None = None,
        code_challenge: str | None = None,
        challenge_method: str = "S256",
        offline: bool = True,
    ) -> str:
        """An authorization code as if ``email`` had consented (skips the browser)."""
        with self._lock:
            return self._mint_code(
                email,
                list(scopes),
                redirect_uri or self.redirect_uri,
                code_challenge,
                challenge_method,
                offline,
            )

    def _mint_code(
        self,
        email: str,
        scopes: list[str],
        redirect_uri: str,
        challenge: str | None,
        method: str,
        offline: bool,
        include_granted: bool = False,
    ) -> str:
        account = self.accounts[email]
        granted = [s for s in scopes if self._grant_only is None or s in self._grant_only]
        if include_granted:
            granted = sorted(set(granted) | account.granted)
        account.granted |= set(granted)
        code = "4/0A" + secrets.token_urlsafe(30)
        self._codes[code] = _Code(
            email=email,
            redirect_uri=redirect_uri,
            scope=" ".join(granted),
            code_challenge=challenge,
            challenge_method=method,
            offline=offline,
            expires_at=self.clock.now() + CODE_TTL,
        )
        return code

    def expire_access_tokens(self, email: str | None = None) -> None:
        """Access tokens (of ``email``, or everyone) expire now: the API answers 401 ``authError``."""
        with self._lock:
            past = self.clock.now() - timedelta(seconds=1)
            for token, (grant, _) in list(self._access.items()):
                if email is None or grant.email == email:
                    self._access[token] = (grant, past)

    def invalidate_refresh_tokens(self, email: str | None = None) -> None:
        """Refresh tokens die (unused 6 months, Testing-mode 7 days, token limit): the next refresh gets
        400 ``invalid_grant``. Access tokens keep working until they expire."""
        with self._lock:
            for token, grant in list(self._refresh.items()):
                if email is None or grant.email == email:
                    del self._refresh[token]
                    grant.refresh_token = None

    def revoke_access(self, email: str) -> None:
        """The user removes the app at myaccount.google.com: every token of theirs dies at once."""
        with self._lock:
            grants = [g for g, _ in self._access.values()] + list(self._refresh.values())
            for grant in grants:
                if grant.email == email:
                    self._revoke_grant(grant)

    def access_token_valid(self, token: str) -> bool:
        with self._lock:
            entry = self._access.get(token)
            return entry is not None and self.clock.now() < entry[1]

    # -- failure injection ------------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        reason: str | None = None,
        *,
        count: int = 1,
        retry_after: str | int | None = None,
        message: str | None = None,
        endpoint: str = "api",
    ) -> None:
        """Answer the next ``count`` requests to ``endpoint`` (``"api"`` = Calendar v3, ``"token"`` = the
        token endpoint) with ``status``. Reasons default to Google's: 429 ``rateLimitExceeded``, 5xx
        ``backendError``; API bodies use the §4.2 shape, token ones ``{"error", "error_description"}``."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if endpoint == "token":
            error = reason or ("rate_limit_exceeded" if status == 429 else "internal_failure")
            reply = oauth_error(status, error, message or "Injected failure.")
            reply.headers.update(headers)
        else:
            default = {429: "rateLimitExceeded", 403: "userRateLimitExceeded"}.get(
                status, "backendError" if status >= 500 else "invalid"
            )
            reason = reason or default
            domain = (
                "usageLimits"
                if "RateLimit" in reason or "rateLimit" in reason or "quota" in reason
                else "global"
            )
            text = message or {
                "rateLimitExceeded": "Rate Limit Exceeded",
                "userRateLimitExceeded": "User Rate Limit Exceeded",
                "backendError": "Backend Error",
            }.get(reason, "Injected failure.")
            reply = google_error(status, reason, text, domain=domain, headers=headers)
        with self._lock:
            self._failures[endpoint].extend(copy.deepcopy(reply) for _ in range(count))

    # -- calendar state and the host acting in Google ----------------------------------------------------

    def events_of(self, calendar_id: str, *, include_cancelled: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            cal = self.calendars[calendar_id]
            return [
                copy.deepcopy(e)
                for e in cal.events.values()
                if include_cancelled or e.get("status") != "cancelled"
            ]

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self.calendars[calendar_id].events.get(event_id)
            return copy.deepcopy(found) if found is not None else None

    def host_creates_event(
        self,
        calendar_id: str,
        *,
        summary: str,
        start: datetime,
        end: datetime,
        event_id: str | None = None,
        transparency: str = "opaque",
        notify: bool = True,
    ) -> dict[str, Any]:
        """The host adds an event of their own in Google (a busy block)."""
        with self._lock:
            cal = self.calendars[calendar_id]
            body = {
                "summary": summary,
                "start": {"dateTime": _utc_z(start)},
                "end": {"dateTime": _utc_z(end)},
                "transparency": transparency,
            }
            if event_id is not None:
                body["id"] = event_id
            event = self._store_new(cal, body)
        if notify:
            self.notify_calendar(calendar_id)
        return copy.deepcopy(event)

    def host_moves_event(
        self, calendar_id: str, event_id: str, start: datetime, end: datetime, *, notify: bool = True
    ) -> dict[str, Any]:
        """The host drags an event to another time in Google's UI (its time zone is kept)."""
        with self._lock:
            cal = self.calendars[calendar_id]
            event = cal.events[event_id]
            zone = {}
            for key, value in (("start", start), ("end", end)):
                tz = event.get(key, {}).get("timeZone")
                zone[key] = {"dateTime": _utc_z(value), **({"timeZone": tz} if tz else {})}
            self._apply_patch(cal, event, zone)
            moved = copy.deepcopy(event)
        if notify:
            self.notify_calendar(calendar_id)
        return moved

    def host_edits_event(
        self, calendar_id: str, event_id: str, fields: dict[str, Any], *, notify: bool = True
    ) -> dict[str, Any]:
        """The host edits any fields (patch semantics), e.g. ``{"summary": "Lunch"}``."""
        with self._lock:
            cal = self.calendars[calendar_id]
            event = cal.events[event_id]
            self._apply_patch(cal, event, fields)
            edited = copy.deepcopy(event)
        if notify:
            self.notify_calendar(calendar_id)
        return edited

    def host_deletes_event(self, calendar_id: str, event_id: str, *, notify: bool = True) -> dict[str, Any]:
        """The host deletes an event in Google: it turns ``cancelled`` (and shows up as such in sync)."""
        with self._lock:
            cal = self.calendars[calendar_id]
            event = cal.events[event_id]
            self._cancel(cal, event)
            deleted = copy.deepcopy(event)
        if notify:
            self.notify_calendar(calendar_id)
        return deleted

    def expire_sync_tokens(self, calendar_id: str | None = None) -> int:
        """Every sync token issued so far (for ``calendar_id``, or all) becomes invalid: a list with one
        answers 410 ``fullSyncRequired``. Returns how many were expired."""
        with self._lock:
            hit = [
                t for t, (cid, _) in self._sync_tokens.items() if calendar_id is None or cid == calendar_id
            ]
            self._expired_sync_tokens.update(hit)
            return len(hit)

    # -- push -------------------------------------------------------------------------------------------

    def channel(self, channel_id: str) -> _Channel | None:
        with self._lock:
            return self.channels.get(channel_id)

    def notify(self, channel_id: str, state: str = "exists", *, token: str | None = None) -> PushDelivery:
        """POST one notification on ``channel_id`` now and return what happened. ``token`` overrides the
        channel token (to test rejection of a forged push)."""
        with self._lock:
            channel = self.channels[channel_id]
            delivery = self._prepare_push(channel, state, token_override=token)
        self._deliver(delivery)
        return delivery

    def notify_calendar(self, calendar_id: str, state: str = "exists") -> list[PushDelivery]:
        """Notify every live channel watching ``calendar_id`` (what Google does after a change)."""
        with self._lock:
            deliveries = [self._prepare_push(c, state) for c in self._live_channels(calendar_id)]
        for delivery in deliveries:
            self._deliver(delivery)
        return deliveries

    def wait_for_pushes(self, count: int, timeout: float = 5.0) -> list[PushDelivery]:
        """Block until ``count`` deliveries finished (AssertionError after ``timeout`` seconds)."""
        with self._push_cond:

            def done() -> bool:
                return sum(1 for p in self.pushes if p.status is not None or p.error) >= count

            if not self._push_cond.wait_for(done, timeout=timeout):
                raise AssertionError(
                    f"expected {count} push deliveries, got {len(self.pushes)} within {timeout}s"
                )
            return list(self.pushes)

    def _live_channels(self, calendar_id: str) -> list[_Channel]:
        now = self.clock.now()
        return [
            c
            for c in self.channels.values()
            if c.calendar_id == calendar_id and not c.stopped and now < c.expiration
        ]

    def _prepare_push(
        self, channel: _Channel, state: str, *, token_override: str | None = None
    ) -> PushDelivery:
        number = channel.next_number
        channel.next_number += 1
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": format_datetime(channel.expiration, usegmt=True),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(number),
            "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
        }
        token = token_override if token_override is not None else channel.token
        if token is not None:
            headers["X-Goog-Channel-Token"] = token
        delivery = PushDelivery(channel.id, number, state, channel.address, headers)
        self.pushes.append(delivery)
        return delivery

    def _deliver(self, delivery: PushDelivery) -> None:
        try:
            # Empty body, like Google (§4.8).
            with httpx.Client(timeout=5) as http:
                response = http.post(delivery.address, content=b"", headers=delivery.headers)
            status, error = response.status_code, None
        except httpx.HTTPError as exc:
            status, error = None, repr(exc)
        with self._push_cond:
            delivery.status, delivery.error = status, error
            self._push_cond.notify_all()

    def _deliver_later(self, deliveries: list[PushDelivery]) -> None:
        for delivery in deliveries:
            thread = threading.Thread(
                target=self._deliver, args=(delivery,), name="FakeGooglePush", daemon=True
            )
            self._push_threads.append(thread)
            thread.start()

    # -- dispatch ---------------------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Reply:
        later: list[PushDelivery] = []
        with self._lock:
            try:
                reply = self._route(request, later)
            except _BadRequest as bad:
                reply = bad.reply
            except Exception as exc:  # a bug in the fake: answer 500 and keep it for the test to see
                self.errors.append(exc)
                reply = google_error(500, "backendError", f"Fake Google crashed: {exc!r}")
        # Outside the lock: the receiver may call back into the fake.
        self._deliver_later(later)
        return reply

    def requests_to(self, path_prefix: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in list(self.requests)
            if r.path.startswith(path_prefix) and (method is None or r.method == method)
        ]

    def _route(self, request: RecordedRequest, later: list[PushDelivery]) -> Reply:
        path, method = request.path, request.method
        if path == "/o/oauth2/v2/auth" and method == "GET":
            return self._authorize(request)
        if path == "/token" and method == "POST":
            if self._failures["token"]:
                return self._failures["token"].pop(0)
            return self._token(request)
        if path == "/revoke" and method == "POST":
            return self._revoke(request)
        if path.startswith("/calendar/v3/"):
            if self._failures["api"]:
                return self._failures["api"].pop(0)
            return self._api(request, path[len("/calendar/v3") :], later)
        return google_error(404, "notFound", "Not Found")

    # -- OAuth ------------------------------------------------------------------------------------------

    def _authorize(self, request: RecordedRequest) -> Reply:
        q = {k: v[0] for k, v in request.query.items()}
        if q.get("client_id") != self.client_id:
            return _html(401, "Error 401: invalid_client. The OAuth client was not found.")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:
            return _html(400, "Error 400: redirect_uri_mismatch")
        if q.get("response_type") != "code":
            return _html(400, "Error 400: invalid_request (response_type)")
        scopes = q.get("scope", "").split()
        if not scopes:
            return _html(400, "Error 400: invalid_request. Missing required parameter: scope")
        if unknown := [s for s in scopes if s not in KNOWN_SCOPES]:
            return _html(400, f"Error 400: invalid_scope {' '.join(unknown)}")
        challenge = q.get("code_challenge")
        method = q.get("code_challenge_method", "plain")
        if challenge is not None and method not in ("S256", "plain"):
            return _html(400, "Error 400: invalid_request (code_challenge_method)")
        if self._logged_in is None:
            return _html(200, "Sign in - Google Accounts")
        code = self._mint_code(
            self._logged_in,
            scopes,
            redirect_uri,
            challenge,
            method,
            offline=q.get("access_type") == "offline",
            include_granted=q.get("include_granted_scopes") == "true",
        )
        params = {"state": q["state"]} if "state" in q else {}
        params.update({"code": code, "scope": self._codes[code].scope})
        sep = "&" if "?" in redirect_uri else "?"
        return Reply(302, b"", {"Location": f"{redirect_uri}{sep}{urlencode(params)}"})

    def _token(self, request: RecordedRequest) -> Reply:
        if not (request.header("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            return oauth_error(400, "invalid_request", "Invalid content type.")
        params = {k: v[0] for k, v in request.form.items()}
        if params.get("client_id") != self.client_id:
            return oauth_error(401, "invalid_client", "The OAuth client was not found.")
        if not hmac.compare_digest(params.get("client_secret", "").encode(), self.client_secret.encode()):
            return oauth_error(401, "invalid_client", "Unauthorized")
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            return self._grant_code(params)
        if grant_type == "refresh_token":
            grant = self._refresh.get(params.get("refresh_token", ""))
            if grant is None:
                return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
            rotated = None
            if self.rotate_refresh_tokens:
                self._refresh.pop(grant.refresh_token or "", None)
                rotated = self._new_refresh(grant)
            return self._issue(grant, refresh_token=rotated)
        return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")

    def _grant_code(self, params: dict[str, str]) -> Reply:
        code = self._codes.get(params.get("code", ""))
        if code is None or code.used or self.clock.now() > code.expires_at:
            return oauth_error(400, "invalid_grant", "Malformed auth code.")
        if params.get("redirect_uri") != code.redirect_uri:
            return oauth_error(400, "redirect_uri_mismatch", "Bad Request")
        code.used = True  # single use, even if what follows fails
        if code.code_challenge is not None:
            verifier = params.get("code_verifier", "")
            if not verifier:
                return oauth_error(400, "invalid_grant", "Missing code verifier.")
            if code.challenge_method == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            else:
                computed = verifier
            if not hmac.compare_digest(computed.encode(), code.code_challenge.encode()):
                return oauth_error(400, "invalid_grant", "Invalid code verifier.")
        grant = _Grant(email=code.email, scope=code.scope)
        refresh = self._new_refresh(grant) if code.offline else None
        return self._issue(grant, refresh_token=refresh)

    def _new_refresh(self, grant: _Grant) -> str:
        token = "1//0g" + secrets.token_urlsafe(32)
        grant.refresh_token = token
        self._refresh[token] = grant
        return token

    def _issue(self, grant: _Grant, *, refresh_token: str | None) -> Reply:
        access = "ya29.a0" + secrets.token_urlsafe(32)
        grant.access_tokens.add(access)
        self._access[access] = (grant, self.clock.now() + timedelta(seconds=self.access_token_ttl))
        body: dict[str, Any] = {
            "access_token": access,
            "expires_in": self.access_token_ttl,
            "scope": grant.scope,
            "token_type": "Bearer",
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return Reply.json(200, body, {"Cache-Control": "no-cache, no-store, max-age=0, must-revalidate"})

    def _revoke(self, request: RecordedRequest) -> Reply:
        params = {k: v[0] for k, v in request.query.items()}
        params.update({k: v[0] for k, v in request.form.items()})
        token = params.get("token", "")
        grant = self._refresh.get(token) or (self._access.get(token) or (None, None))[0]
        if grant is None:
            return oauth_error(400, "invalid_token", "Token expired or revoked")
        self._revoke_grant(grant)
        self.revoked.append(token)
        return Reply.json(200, {})

    def _revoke_grant(self, grant: _Grant) -> None:
        for access in grant.access_tokens:
            self._access.pop(access, None)
        if grant.refresh_token:
            self._refresh.pop(grant.refresh_token, None)
        grant.refresh_token = None
        grant.access_tokens.clear()

    # -- Calendar API -----------------------------------------------------------------------------------

    def _api(self, request: RecordedRequest, path: str, later: list[PushDelivery]) -> Reply:
        grant = self._authenticate(request)
        if isinstance(grant, Reply):
            return grant
        account = self.accounts[grant.email]
        segments = [unquote(s) for s in path.strip("/").split("/")]
        method = request.method

        if segments == ["users", "me", "calendarList"] and method == "GET":
            self._require(grant, "calendar_list")
            return self._calendar_list(account, request)
        if segments == ["freeBusy"] and method == "POST":
            self._require(grant, "free_busy")
            return self._free_busy(account, request)
        if segments == ["channels", "stop"] and method == "POST":
            self._require(grant, "channels")
            return self._stop_channel(account, request)
        if len(segments) >= 3 and segments[0] == "calendars" and segments[2] == "events":
            cal = self._calendar_for(account, segments[1])
            rest = segments[3:]
            writes = method in ("POST", "PATCH", "PUT", "DELETE") and rest != ["watch"]
            self._require(grant, "write_events" if writes else "read_events")
            if writes and _ROLE_RANK[cal.access_role] < _ROLE_RANK["writer"]:
                raise _BadRequest(
                    google_error(
                        403, "requiredAccessLevel", "You need to have writer access to this calendar."
                    )
                )
            if not rest and method == "POST":
                reply = self._insert(cal, request)
            elif not rest and method == "GET":
                return self._list(cal, request)
            elif rest == ["watch"] and method == "POST":
                return self._watch(account, cal, request, later)
            elif len(rest) == 1 and method == "GET":
                return self._get(cal, rest[0])
            elif len(rest) == 1 and method == "PATCH":
                reply = self._patch(cal, rest[0], request)
            elif len(rest) == 1 and method == "DELETE":
                reply = self._delete(cal, rest[0])
            else:
                return google_error(404, "notFound", "Not Found")
            if reply.status < 300 and self.push_on_api_writes:
                later.extend(self._prepare_push(c, "exists") for c in self._live_channels(cal.id))
            return reply
        return google_error(404, "notFound", "Not Found")

    def _authenticate(self, request: RecordedRequest) -> _Grant | Reply:
        auth = request.header("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else ""
        entry = self._access.get(token)
        if entry is None or self.clock.now() >= entry[1]:
            return google_error(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                "or other valid authentication credential.",
                location="Authorization",
                location_type="header",
                api_status="UNAUTHENTICATED",
                headers={
                    "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
                },
            )
        return entry[0]

    def _require(self, grant: _Grant, op: str) -> None:
        if not _NEEDS[op].intersection(grant.scope.split()):
            raise _BadRequest(
                google_error(
                    403,
                    "insufficientPermissions",
                    "Request had insufficient authentication scopes.",
                    api_status="PERMISSION_DENIED",
                )
            )

    def _calendar_for(self, account: FakeGoogleAccount, raw_id: str) -> FakeCalendar:
        cid = account.primary if raw_id == "primary" else raw_id
        if cid not in account.calendars:
            raise _BadRequest(google_error(404, "notFound", "Not Found"))
        return self.calendars[cid]

    def _json_body(self, request: RecordedRequest) -> dict[str, Any]:
        try:
            data = json.loads(request.body or b"null")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _BadRequest(google_error(400, "parseError", "Parse Error"))
        return data

    # calendarList ---------------------------------------------------------------------------------------

    def _calendar_list(self, account: FakeGoogleAccount, request: RecordedRequest) -> Reply:
        q = {k: v[0] for k, v in request.query.items()}
        min_role = q.get("minAccessRole")
        if min_role is not None and min_role not in _ROLE_RANK:
            return google_error(400, "invalid", "Invalid value for minAccessRole", location="minAccessRole")
        size = min(int(q.get("maxResults") or 100), 250)
        entries = [
            self.calendars[cid]
            for cid in account.calendars
            if min_role is None or _ROLE_RANK[self.calendars[cid].access_role] >= _ROLE_RANK[min_role]
        ]
        offset = int(q["pageToken"].removeprefix("p")) if q.get("pageToken") else 0
        page = entries[offset : offset + size]
        body: dict[str, Any] = {
            "kind": "calendar#calendarList",
            "etag": f'"p{next(self._etags)}"',
            "items": [
                {
                    "kind": "calendar#calendarListEntry",
                    "etag": f'"{next(self._etags)}"',
                    "id": c.id,
                    "summary": c.summary,
                    "timeZone": c.time_zone,
                    "colorId": "14",
                    "backgroundColor": "#9fe1e7",
                    "foregroundColor": "#000000",
                    "selected": True,
                    "accessRole": c.access_role,
                    "defaultReminders": [{"method": "popup", "minutes": 10}] if c.primary else [],
                    "conferenceProperties": {"allowedConferenceSolutionTypes": ["hangoutsMeet"]},
                    **({"primary": True} if c.primary else {}),
                }
                for c in page
            ],
        }
        if offset + size < len(entries):
            body["nextPageToken"] = f"p{offset + size}"
        else:
            body["nextSyncToken"] = "cl" + secrets.token_urlsafe(12)
        return Reply.json(200, body)

    # events ---------------------------------------------------------------------------------------------

    def _insert(self, cal: FakeCalendar, request: RecordedRequest) -> Reply:
        body = self._json_body(request)
        event_id = body.get("id")
        if event_id is not None:
            if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
                return google_error(400, "invalid", "Invalid resource id value.")
            if event_id in cal.events:  # deleted ones stay reserved [U]
                return google_error(409, "duplicate", "The requested identifier already exists.")
        event = self._store_new(cal, body)
        return Reply.json(200, event)

    def _store_new(self, cal: FakeCalendar, body: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        event_id = body.get("id") or _random_event_id()
        email = cal.owner
        event: dict[str, Any] = {
            "kind": "calendar#event",
            "id": event_id,
            "status": "confirmed",
            "htmlLink": "https://www.google.com/calendar/event?eid="
            + base64.urlsafe_b64encode(f"{event_id} {cal.id}".encode()).decode().rstrip("="),
            "created": rfc3339_ms(now),
            "creator": {"email": email, "self": True},
            "organizer": {"email": email, "self": True},
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
        }
        for key, value in body.items():
            if key not in (
                "id",
                "kind",
                "etag",
                "htmlLink",
                "created",
                "updated",
                "creator",
                "organizer",
                "iCalUID",
            ):
                event[key] = copy.deepcopy(value)
        self._normalise(cal, event)
        self._touch(cal, event)
        cal.events[event_id] = event
        return event

    def _get(self, cal: FakeCalendar, event_id: str) -> Reply:
        event = cal.events.get(event_id)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        # A deleted event is still readable by id, with status "cancelled".
        return Reply.json(200, event)

    def _patch(self, cal: FakeCalendar, event_id: str, request: RecordedRequest) -> Reply:
        event = cal.events.get(event_id)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        if event.get("status") == "cancelled":
            return google_error(410, "deleted", "Resource has been deleted")
        if_match = request.header("If-Match")
        if if_match is not None and if_match != event["etag"]:
            return google_error(
                412, "conditionNotMet", "Precondition Failed", location="If-Match", location_type="header"
            )
        body = self._json_body(request)
        if "id" in body and body["id"] != event_id:
            return google_error(400, "invalid", "Invalid resource id value.")
        self._apply_patch(cal, event, body)
        return Reply.json(200, event)

    def _apply_patch(self, cal: FakeCalendar, event: dict[str, Any], body: dict[str, Any]) -> None:
        candidate = copy.deepcopy(event)
        patch = {
            k: v for k, v in body.items() if k not in ("id", "kind", "etag", "created", "updated", "iCalUID")
        }
        for key in ("start", "end"):  # an EventDateTime is replaced whole (date vs dateTime must not mix)
            if key in patch:
                candidate[key] = copy.deepcopy(patch.pop(key))
        _merge(candidate, patch)
        self._normalise(cal, candidate)
        if candidate["start"] != event["start"] or candidate["end"] != event["end"]:
            candidate["sequence"] = int(event.get("sequence", 0)) + 1
        event.clear()
        event.update(candidate)
        self._touch(cal, event)

    def _delete(self, cal: FakeCalendar, event_id: str) -> Reply:
        event = cal.events.get(event_id)
        if event is None:
            return google_error(404, "notFound", "Not Found")
        if event.get("status") == "cancelled":
            return google_error(410, "deleted", "Resource has been deleted")
        self._cancel(cal, event)
        return Reply(204)

    def _cancel(self, cal: FakeCalendar, event: dict[str, Any]) -> None:
        event["status"] = "cancelled"
        self._touch(cal, event)

    def _touch(self, cal: FakeCalendar, event: dict[str, Any]) -> None:
        cal.change_seq += 1
        cal.seq_of[event["id"]] = cal.change_seq
        event["updated"] = rfc3339_ms(self.clock.now())
        event["etag"] = f'"{3421956789012000 + next(self._etags)}"'

    def _normalise(self, cal: FakeCalendar, event: dict[str, Any]) -> None:
        """Validate start/end and render them as Google does: ``dateTime`` in the event's time zone (or the
        calendar's) with its offset, ``timeZone`` kept only when given."""
        if "start" not in event or not isinstance(event["start"], dict):
            raise _BadRequest(google_error(400, "required", "Missing start time."))
        if "end" not in event or not isinstance(event["end"], dict):
            raise _BadRequest(google_error(400, "required", "Missing end time."))
        start = self._render_time(cal, event["start"])
        end = self._render_time(cal, event["end"])
        if _instant(start, cal) > _instant(end, cal):
            raise _BadRequest(google_error(400, "timeRangeEmpty", "The specified time range is empty."))
        event["start"], event["end"] = start, end
        overrides = (event.get("reminders") or {}).get("overrides") or []
        if len(overrides) > 5:
            raise _BadRequest(google_error(400, "invalid", "Too many reminder overrides."))
        if event.get("status") not in (None, "confirmed", "tentative", "cancelled"):
            raise _BadRequest(google_error(400, "invalid", "Invalid status value."))
        for kind in ("private", "shared"):
            props = (event.get("extendedProperties") or {}).get(kind) or {}
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in props.items()):
                raise _BadRequest(google_error(400, "invalid", "Invalid extended property value."))

    def _render_time(self, cal: FakeCalendar, value: dict[str, Any]) -> dict[str, Any]:
        tz_name = value.get("timeZone")
        try:
            zone = ZoneInfo(tz_name or cal.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise _BadRequest(google_error(400, "timeZoneInvalid", "Invalid time zone definition.")) from exc
        if value.get("dateTime"):
            raw = str(value["dateTime"])
            try:
                parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            except ValueError as exc:
                raise _BadRequest(google_error(400, "invalid", "Invalid start time.")) from exc
            if parsed.tzinfo is None:
                if not tz_name:  # an offset is required unless timeZone is given (§4.3)
                    raise _BadRequest(
                        google_error(400, "invalid", "Missing time zone definition for start time.")
                    )
                parsed = parsed.replace(tzinfo=zone)
            rendered: dict[str, Any] = {"dateTime": parsed.astimezone(zone).isoformat(timespec="seconds")}
            if tz_name:
                rendered["timeZone"] = tz_name
            return rendered
        if value.get("date"):
            try:
                date.fromisoformat(str(value["date"]))
            except ValueError as exc:
                raise _BadRequest(google_error(400, "invalid", "Invalid start time.")) from exc
            return {"date": str(value["date"]), **({"timeZone": tz_name} if tz_name else {})}
        raise _BadRequest(google_error(400, "required", "Missing time."))

    # events.list ----------------------------------------------------------------------------------------

    def _list(self, cal: FakeCalendar, request: RecordedRequest) -> Reply:
        query = request.query
        q = {k: v[0] for k, v in query.items()}
        try:
            size = int(q.get("maxResults") or 250)
        except ValueError:
            return google_error(400, "invalid", "Invalid value for maxResults", location="maxResults")
        if size < 1:
            return google_error(400, "invalid", "Invalid value for maxResults", location="maxResults")
        size = min(size, 2500)
        sync_token = q.get("syncToken")
        if page_token := q.get("pageToken"):
            cursor = self._cursors.get(page_token)
            if cursor is None or cursor.calendar_id != cal.id or cursor.sync_token != sync_token:
                return google_error(400, "invalid", "Invalid page token value.", location="pageToken")
            del self._cursors[page_token]
            if sync_token and sync_token in self._expired_sync_tokens:
                return self._full_sync_required()
            return self._page(cal, cursor)
        if sync_token:
            if bad := [p for p in _SYNC_FORBIDDEN if p in query]:
                return google_error(
                    400, "invalid", f"Sync token cannot be used with other request restrictions: {bad[0]}."
                )
            known = self._sync_tokens.get(sync_token)
            if known is None or known[0] != cal.id:
                return google_error(400, "invalid", "Invalid sync token value.", location="syncToken")
            if sync_token in self._expired_sync_tokens:
                return self._full_sync_required()
            since = known[1]
            items = [e for eid, e in cal.events.items() if cal.seq_of[eid] > since]
        else:
            try:
                items = self._filtered(cal, query, q)
            except ValueError:
                return google_error(400, "invalid", "Bad Request")
        items.sort(key=lambda e: cal.seq_of[e["id"]])
        cursor = _Cursor(cal.id, sync_token, [_listed(e) for e in items], size, cal.change_seq)
        return self._page(cal, cursor)

    def _filtered(
        self, cal: FakeCalendar, query: dict[str, list[str]], q: dict[str, str]
    ) -> list[dict[str, Any]]:
        show_deleted = q.get("showDeleted") == "true"
        time_min = _parse_rfc3339(q["timeMin"]) if "timeMin" in q else None
        time_max = _parse_rfc3339(q["timeMax"]) if "timeMax" in q else None
        props = [p.partition("=") for p in query.get("privateExtendedProperty", [])]
        ical = q.get("iCalUID")
        out = []
        for event in cal.events.values():
            if event.get("status") == "cancelled" and not show_deleted:
                continue
            start, end = _instant(event["start"], cal), _instant(event["end"], cal)
            # timeMin bounds the end, timeMax the start, both exclusive (§4.7).
            if time_min is not None and not end > time_min:
                continue
            if time_max is not None and not start < time_max:
                continue
            private = (event.get("extendedProperties") or {}).get("private") or {}
            if any(private.get(k) != v for k, _, v in props):
                continue
            if ical is not None and event.get("iCalUID") != ical:
                continue
            out.append(event)
        return out

    def _page(self, cal: FakeCalendar, cursor: _Cursor) -> Reply:
        page, rest = cursor.items[: cursor.page_size], cursor.items[cursor.page_size :]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"{next(self._etags)}"',
            "summary": cal.summary,
            "updated": rfc3339_ms(self.clock.now()),
            "timeZone": cal.time_zone,
            "accessRole": cal.access_role,
            "defaultReminders": [{"method": "popup", "minutes": 10}] if cal.primary else [],
            "items": page,
        }
        if rest:
            token = "pt" + secrets.token_urlsafe(18)
            self._cursors[token] = _Cursor(
                cal.id, cursor.sync_token, rest, cursor.page_size, cursor.final_seq
            )
            body["nextPageToken"] = token
        else:
            # Only the last page carries the sync token, pinned at the moment the listing started.
            token = "CP" + secrets.token_urlsafe(24)
            self._sync_tokens[token] = (cal.id, cursor.final_seq)
            body["nextSyncToken"] = token
        return Reply.json(200, body)

    def _full_sync_required(self) -> Reply:
        message = "Sync token is no longer valid, a full sync is required."
        return google_error(410, "fullSyncRequired", message, domain="calendar", location="syncToken")

    # freeBusy -------------------------------------------------------------------------------------------

    def _free_busy(self, account: FakeGoogleAccount, request: RecordedRequest) -> Reply:
        body = self._json_body(request)
        try:
            time_min = _parse_rfc3339(str(body["timeMin"]))
            time_max = _parse_rfc3339(str(body["timeMax"]))
        except (KeyError, ValueError):
            return google_error(400, "required", "Missing timeMin or timeMax.")
        if time_min >= time_max:
            return google_error(
                400, "timeRangeEmpty", "The specified time range is empty.", location="timeMax"
            )
        items = body.get("items") or []
        calendars: dict[str, Any] = {}
        for index, item in enumerate(items):
            requested = str((item or {}).get("id", ""))
            if index >= 50:
                calendars[requested] = {
                    "errors": [{"domain": "global", "reason": "tooManyCalendarsRequested"}],
                    "busy": [],
                }
                continue
            cid = account.primary if requested == "primary" else requested
            cal = self.calendars.get(cid)
            if cal is None:
                calendars[requested] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            calendars[requested] = {"busy": _busy(cal, time_min, time_max)}
        return Reply.json(
            200,
            {
                "kind": "calendar#freeBusy",
                "timeMin": rfc3339_ms(time_min),
                "timeMax": rfc3339_ms(time_max),
                "calendars": calendars,
            },
        )

    # watch / stop ---------------------------------------------------------------------------------------

    def _watch(
        self,
        account: FakeGoogleAccount,
        cal: FakeCalendar,
        request: RecordedRequest,
        later: list[PushDelivery],
    ) -> Reply:
        body = self._json_body(request)
        channel_id = body.get("id")
        if not isinstance(channel_id, str) or not channel_id or len(channel_id) > 64:
            return google_error(400, "required", "Channel id is required (at most 64 characters).")
        if body.get("type") not in ("web_hook", "webhook"):
            return google_error(400, "invalid", "Invalid channel type.")
        address = body.get("address")
        if not isinstance(address, str) or not address:
            return google_error(400, "required", "WebHook callback address is required.")
        parts = urlsplit(address)
        local = parts.hostname in ("127.0.0.1", "localhost")  # the fake's one relaxation (module docstring)
        if parts.scheme != "https" and not local:
            return google_error(400, "push.webhookUrlNotHttps", f"WebHook callback must be HTTPS: {address}")
        token = body.get("token")
        if token is not None and (not isinstance(token, str) or len(token) > 256):
            return google_error(400, "invalid", "Channel token too long.")
        if channel_id in self.channels:
            return google_error(400, "channelIdNotUnique", f"Channel id {channel_id} not unique")
        try:
            ttl = int((body.get("params") or {}).get("ttl", DEFAULT_CHANNEL_TTL))
        except (TypeError, ValueError):
            return google_error(400, "invalid", "Invalid ttl value.")
        now = self.clock.now()
        expiration = now + timedelta(seconds=min(max(ttl, 1), DEFAULT_CHANNEL_TTL * 4))
        if body.get("expiration") is not None:
            requested = datetime.fromtimestamp(int(body["expiration"]) / 1000, tz=UTC)
            expiration = min(expiration, requested)
        channel = _Channel(
            id=channel_id,
            calendar_id=cal.id,
            resource_id=cal.resource_id,
            resource_uri=f"{self.api_base}/calendars/{quote(cal.id, safe='')}/events?alt=json",
            address=address,
            token=token,
            expiration=expiration,
            email=account.email,
        )
        self.channels[channel_id] = channel
        if self.sync_message_on_watch:
            later.append(self._prepare_push(channel, "sync"))
        reply: dict[str, Any] = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": str(int(expiration.timestamp() * 1000)),
        }
        if token is not None:
            reply["token"] = token
        return Reply.json(200, reply)

    def _stop_channel(self, account: FakeGoogleAccount, request: RecordedRequest) -> Reply:
        body = self._json_body(request)
        channel = self.channels.get(str(body.get("id", "")))
        if channel is None or channel.stopped or channel.resource_id != body.get("resourceId"):
            return google_error(404, "notFound", f"Channel '{body.get('id')}' not found for project 'fake'")
        channel.stopped = True
        return Reply(204)


# ----------------------------------------------------------------------------------------- module-level


def _listed(event: dict[str, Any]) -> dict[str, Any]:
    """How an event appears in a list: a cancelled one is reduced to its id and status (§4.7)."""
    if event.get("status") == "cancelled":
        return {"kind": "calendar#event", "etag": event["etag"], "id": event["id"], "status": "cancelled"}
    return copy.deepcopy(event)


def _instant(value: dict[str, Any], cal: FakeCalendar) -> datetime:
    if "dateTime" in value:
        return _parse_rfc3339(value["dateTime"])
    # An all-day date starts at midnight in the calendar's zone.
    day = date.fromisoformat(value["date"])
    return ensure_utc(datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(cal.time_zone)))


def _busy(cal: FakeCalendar, time_min: datetime, time_max: datetime) -> list[dict[str, str]]:
    spans = []
    for event in cal.events.values():
        if event.get("status") == "cancelled" or event.get("transparency") == "transparent":
            continue
        start, end = max(_instant(event["start"], cal), time_min), min(_instant(event["end"], cal), time_max)
        if start < end:
            spans.append((start, end))
    spans.sort()
    merged: list[list[datetime]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [{"start": _utc_z(s), "end": _utc_z(e)} for s, e in merged]


def parse_redirect(location: str) -> dict[str, str]:
    """The query of a ``/o/oauth2/v2/auth`` redirect (``code``, ``state``, ``scope``)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
