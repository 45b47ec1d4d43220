"""Google OAuth 2.0 and Google Calendar API v3 client, over an injectable ``httpx.Client``.

Implements contract ``EXTERNAL_APIS.md`` §4: the web-server authorization-code flow with PKCE S256
(``access_type=offline``, ``prompt=consent``), code exchange, refresh (Google normally does **not** rotate
refresh tokens: the old one is kept unless a new one comes back), revoke; ``calendarList.list`` so a user can
pick a calendar; ``events`` insert/get/patch/delete with a client-chosen id (:func:`event_id_for`), list with
incremental sync (``syncToken``/``pageToken``); ``freeBusy.query``; ``events.watch`` / ``channels.stop``; and
verification of incoming push notifications (:func:`verify_push`).

Like :mod:`providers.zoom_client` it holds no state beyond configuration: tokens come in as arguments and go
out as :class:`GoogleTokens`; the caller persists them. Every failure is one of the :class:`GoogleError`
subclasses below; httpx exceptions never escape. Permanent failures are also
``automations.errors.PermanentProviderError`` and transient ones ``RetryableProviderError``, so generic
delivery code can tell them apart without knowing Google. The caller pattern::

    try:
        result = client.insert_event(tokens.access_token, calendar_id, draft)
    except GoogleAuthError:                      # 401: the access token expired or was revoked
        tokens = client.refresh(tokens.refresh_token, now=clock.now())   # GoogleInvalidGrant: re-authorize
        store(tokens)
        result = client.insert_event(tokens.access_token, calendar_id, draft)

    try:
        changes = client.sync_events(token, calendar_id, stored_sync_token)
    except GoogleSyncTokenExpired:               # 410: wipe the local copy, then a full sync
        changes = client.sync_events(token, calendar_id, None, full_sync_time_min=...)

Our own writes carry ``extendedProperties.private`` keys (:data:`PROP_APPOINTMENT_ID`, :data:`PROP_VERSION`,
:data:`PROP_FINGERPRINT`) so an inbound sync can tell an event we wrote (and whether the host changed it since,
:func:`host_modified`) from the host's own events.

Base URLs are injectable so tests point the client at ``tests/fakes/google_server.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from automations.clock import Clock, ensure_utc
from automations.errors import (
    PermanentProviderError,
    ProviderError,
    RetryableProviderError,
    Unauthorized,
)
from providers.headers import HeaderItems, header
from providers.oauth_http import OAuthHttpClient, code_challenge_s256, json_or_empty, make_code_verifier

DEFAULT_OAUTH_BASE = "https://accounts.google.com"  # + /o/oauth2/v2/auth
DEFAULT_TOKEN_BASE = "https://oauth2.googleapis.com"  # + /token, /revoke
DEFAULT_API_BASE = "https://www.googleapis.com/calendar/v3"
AUTHORIZE_PATH = "/o/oauth2/v2/auth"

SCOPE_CALENDAR = "https://www.googleapis.com/auth/calendar"
SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_READONLY = "https://www.googleapis.com/auth/calendar.readonly"
# calendar.events covers events CRUD and watch; calendar.readonly covers freeBusy and calendarList (§4.1).
DEFAULT_SCOPES = (SCOPE_EVENTS, SCOPE_READONLY)
# What each broader scope also grants, for :meth:`GoogleTokens.missing_scopes`.
_IMPLIED_SCOPES: Mapping[str, frozenset[str]] = {
    SCOPE_CALENDAR: frozenset({SCOPE_CALENDAR, SCOPE_EVENTS, SCOPE_READONLY}),
}

# Keys of extendedProperties.private that mark an event as written by Punctual.
PROP_APPOINTMENT_ID = "punctual_appointment_id"
PROP_VERSION = "punctual_version"
PROP_FINGERPRINT = "punctual_fingerprint"

REFRESH_MARGIN = timedelta(seconds=60)
MAX_SYNC_PAGES = 1000  # a loop guard: 1000 pages of 250 is far beyond any one calendar's changes

# Client-chosen event ids: base32hex characters, 5-1024 long (§4.4 A).
_EVENT_ID = re.compile(r"^[0-9a-v]{5,1024}$")
# 403 reasons that mean "slow down", not "forbidden" (§4.2).
_RATE_REASONS = frozenset(
    {"userRateLimitExceeded", "rateLimitExceeded", "quotaExceeded", "dailyLimitExceeded"}
)
_SYNC_GONE_REASONS = frozenset({"fullSyncRequired", "updatedMinTooLongAgo"})
_SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})


# --------------------------------------------------------------------------------------------- errors


class GoogleError(ProviderError):
    """Base of every Google failure. ``http_status`` and ``reason`` (the first ``errors[].reason`` of an API
    error, or the OAuth ``error`` string) are kept for logs and for the caller's decisions."""

    code = "google_error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        # ProviderError.__init__ directly: the Retryable/PermanentProviderError mix-ins below fix
        # ``retryable`` in their own __init__, whose signature would clash with ours through the MRO.
        ProviderError.__init__(
            self,
            message,
            retryable=self.default_retryable,
            provider_code=reason,
            retry_after=retry_after,
        )
        self.http_status = http_status
        self.reason = reason


class GooglePermanentError(GoogleError, PermanentProviderError):
    """Retrying the same request gives the same answer."""

    code = "google_permanent"


class GoogleRetryableError(GoogleError, RetryableProviderError):
    """Transient: retry later (``retry_after`` seconds when Google said so, else exponential backoff)."""

    code = "google_retryable"
    default_retryable = True


class GoogleRequestRejected(GooglePermanentError):
    """A 4xx not covered below (400 ``invalid``/``timeRangeEmpty``, 403 ``forbiddenForNonOrganizer``, an
    ``invalid_client`` from the token endpoint...): fix the request or the configuration."""

    code = "google_request_rejected"


class GoogleAuthError(GooglePermanentError):
    """401 ``authError``: the access token is invalid or expired. Refresh and retry once; a second one means
    the connection needs re-authorization. Retrying with the same token is futile, hence permanent."""

    code = "google_auth_error"


class GoogleConnectionBroken(GooglePermanentError):
    """The stored connection cannot be used any more: mark it "needs re-authorization" and tell the user."""

    code = "google_connection_broken"


class GoogleInvalidGrant(GoogleConnectionBroken):
    """The token endpoint answered ``invalid_grant``. On refresh: the refresh token is dead (revoked by the
    user, unused ~6 months, consent screen in Testing, token limit). On code exchange: a bad, reused or
    expired code, or a wrong PKCE verifier; restart the flow."""

    code = "google_invalid_grant"


class GoogleInsufficientScope(GoogleConnectionBroken):
    """403 ``insufficientPermissions``: the user did not grant a scope this call needs (Google's consent
    screen lets users untick scopes). Only a new authorization helps."""

    code = "google_insufficient_scope"


class GoogleNotFound(GooglePermanentError):
    """404 ``notFound``: no such event, calendar or channel (or no access to it)."""

    code = "google_not_found"


class GoogleGone(GoogleNotFound):
    """410 ``deleted``: the event was deleted. :meth:`GoogleCalendarClient.delete_event` treats it (and 404)
    as success."""

    code = "google_gone"


class GoogleDuplicateId(GooglePermanentError):
    """409 ``duplicate``: the client-chosen event id is taken. :meth:`GoogleCalendarClient.insert_event`
    absorbs it (idempotent create); it escapes only when the id belongs to someone else's event or cannot be
    read back (ids of deleted events may stay reserved: re-create with the next ``generation``)."""

    code = "google_duplicate_id"


class GooglePreconditionFailed(GooglePermanentError):
    """412 ``conditionNotMet``: ``If-Match`` etag mismatch. Re-fetch the event and re-apply the change."""

    code = "google_precondition_failed"


class GoogleSyncTokenExpired(GooglePermanentError):
    """410 ``fullSyncRequired`` / ``updatedMinTooLongAgo`` on ``events.list``: discard the stored sync token
    and the local copy of that calendar, then do a full sync (``sync_token=None``)."""

    code = "google_sync_token_expired"


class GoogleRateLimited(GoogleRetryableError):
    """429, or 403 ``rateLimitExceeded``/``userRateLimitExceeded``/``quotaExceeded``. ``retry_after`` is set
    only when Google sent ``Retry-After``; otherwise back off exponentially. ``retry_at`` is the same as an
    instant."""

    code = "google_rate_limited"

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_at = retry_at


class GoogleUnavailable(GoogleRetryableError):
    """5xx (``backendError``), timeouts, connection failures, malformed success bodies.

    ``maybe_applied`` is True when the request may have reached Google: a retried insert is still safe
    because the client-chosen id turns the repeat into a 409 that :meth:`insert_event` absorbs."""

    code = "google_unavailable"

    def __init__(self, message: str, *, maybe_applied: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.maybe_applied = maybe_applied


class GooglePushRejected(Unauthorized):
    """An incoming push notification failed verification (unknown channel, wrong token, missing headers).
    Not a provider error: it is an inbound request the web layer answers with 401. ``why`` says which check
    failed, for logs (never echo it to the sender)."""

    code = "google_push_rejected"

    def __init__(self, why: str) -> None:
        super().__init__(f"Google push notification rejected: {why}")
        self.why = why


# --------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class GoogleTokens:
    """Tokens from the token endpoint. Opaque strings are kept out of ``repr``.

    ``refresh_token`` is None only when Google sent none on a code exchange (it does send one with
    ``access_type=offline&prompt=consent``, which :meth:`GoogleCalendarClient.authorization_url` always asks
    for). After :meth:`GoogleCalendarClient.refresh` it is the new one if Google rotated, else the old one."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime  # aware UTC: ``now`` + ``expires_in``
    scope: str  # space-separated, as granted
    token_type: str = "Bearer"
    id_token: str | None = field(default=None, repr=False)
    refresh_token_rotated: bool = False  # True when a refresh response carried a new refresh token

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def missing_scopes(self, required: Iterable[str] = DEFAULT_SCOPES) -> frozenset[str]:
        """Required scopes the user did not grant (``calendar`` implies the narrower calendar scopes)."""
        granted: set[str] = set()
        for scope in self.scopes:
            granted |= _IMPLIED_SCOPES.get(scope, frozenset({scope}))
        return frozenset(required) - granted

    def expires_soon(self, now: datetime, margin: timedelta = REFRESH_MARGIN) -> bool:
        """True when the access token should be refreshed before use."""
        return ensure_utc(now) >= self.expires_at - margin


@dataclass(frozen=True)
class AuthorizationRequest:
    """Everything one authorization attempt needs: send the browser to ``url``; keep ``state`` and
    ``code_verifier`` (server-side, bound to the user's session) for the callback."""

    url: str
    state: str
    code_verifier: str = field(repr=False)


@dataclass(frozen=True)
class GoogleCalendar:
    """One ``calendarList`` entry: what a user picks from."""

    id: str
    summary: str
    time_zone: str | None
    access_role: str  # freeBusyReader | reader | writer | owner
    primary: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def writable(self) -> bool:
        return self.access_role in ("writer", "owner")


@dataclass(frozen=True)
class Attendee:
    email: str
    display_name: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class EventDraft:
    """What Punctual writes for one appointment. ``version`` is our appointment revision: it goes into the
    private properties (so a sync can tell which of our writes an event reflects) and into nothing else.

    ``timezone`` (IANA) makes Google show the event in that zone; without it times are sent as UTC.
    ``reminder_minutes`` None keeps the calendar's default reminders; ``()`` turns them off."""

    appointment_id: str
    start: datetime
    end: datetime
    summary: str
    version: int = 1
    timezone: str | None = None
    description: str = ""
    location: str = ""
    attendees: tuple[Attendee, ...] = ()
    reminder_minutes: tuple[int, ...] | None = None
    transparency: str = "opaque"  # opaque blocks time in freeBusy; transparent does not


@dataclass(frozen=True)
class GoogleEvent:
    """An event as Google returned it. Cancelled (deleted) events often have only ``id`` and ``status``."""

    id: str
    status: str  # confirmed | tentative | cancelled
    etag: str | None = None
    summary: str = ""
    description: str = ""
    location: str = ""
    start: datetime | None = None  # aware UTC, for timed events
    end: datetime | None = None
    start_date: date | None = None  # for all-day events (end_date exclusive)
    end_date: date | None = None
    timezone: str | None = None
    updated: datetime | None = None
    sequence: int | None = None
    html_link: str | None = None
    private: Mapping[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def all_day(self) -> bool:
        return self.start is None and self.start_date is not None

    @property
    def appointment_id(self) -> str | None:
        """The Punctual appointment this event was written for, or None for the host's own events."""
        return appointment_id_of(self)

    @property
    def punctual_version(self) -> int | None:
        return version_of(self)


@dataclass(frozen=True)
class InsertResult:
    """``created`` is False when the id already existed (a retried or repeated insert): ``event`` is then
    what Google holds under that id, possibly ``cancelled`` if it was deleted in Google meanwhile."""

    event: GoogleEvent
    created: bool


@dataclass(frozen=True)
class EventPage:
    """One ``events.list`` page: ``next_page_token`` or (on the last page only) ``next_sync_token``."""

    items: tuple[GoogleEvent, ...]
    next_page_token: str | None
    next_sync_token: str | None


@dataclass(frozen=True)
class SyncResult:
    """All pages of one sync. ``full`` is True for a full sync: the caller replaces its local copy (an
    incremental result only carries changes, deletions included as ``cancelled`` events)."""

    events: tuple[GoogleEvent, ...]
    next_sync_token: str
    full: bool
    pages: int

    @property
    def changed(self) -> tuple[GoogleEvent, ...]:
        return tuple(e for e in self.events if not e.cancelled)

    @property
    def deleted(self) -> tuple[GoogleEvent, ...]:
        return tuple(e for e in self.events if e.cancelled)


@dataclass(frozen=True)
class BusyInterval:
    start: datetime  # inclusive, aware UTC
    end: datetime  # exclusive


@dataclass(frozen=True)
class CalendarBusy:
    """freeBusy for one calendar. A 200 answer can still carry per-calendar ``errors`` (reasons such as
    ``notFound``): then ``busy`` is empty and means "unknown", not "free"."""

    calendar_id: str
    busy: tuple[BusyInterval, ...]
    errors: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class WatchChannel:
    """A push channel. Store all of it: ``id`` and ``token`` to verify notifications, ``resource_id`` to stop
    the channel, ``expiration`` to create a replacement in time (channels are not renewed automatically)."""

    id: str
    resource_id: str
    resource_uri: str | None
    token: str = field(repr=False)
    expiration: datetime | None
    calendar_id: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PushNotification:
    """The ``X-Goog-*`` headers of one push. ``resource_state`` is ``sync`` (first message of a channel:
    nothing changed), ``exists`` (run an incremental sync) or ``not_exists``."""

    channel_id: str
    resource_id: str
    resource_state: str
    message_number: int | None
    resource_uri: str | None = None
    channel_expiration: str | None = None
    channel_token: str | None = field(default=None, repr=False)

    @property
    def is_sync(self) -> bool:
        return self.resource_state == "sync"


# ------------------------------------------------------------------------------------------ functions


def new_channel_token() -> str:
    """A random secret for a watch channel's ``token`` (echoed in every notification; well under the
    ~256-character limit)."""
    return secrets.token_urlsafe(32)


def event_id_for(appointment_id: str, *, generation: int = 1) -> str:
    """The Google event id for an appointment: the first 32 hex characters of
    ``sha256("<appointment_id>:v<generation>")`` (contract §4.4 A).

    Hex digits are a subset of base32hex, so the id is always valid; it is deterministic, so a retried insert
    hits 409 instead of creating a second event. Bump ``generation`` only to re-create an event after it was
    deleted in Google, because ids of deleted events may stay reserved."""
    if not appointment_id:
        raise ValueError("appointment_id must not be empty")
    if generation < 1:
        raise ValueError("generation starts at 1")
    return hashlib.sha256(f"{appointment_id}:v{generation}".encode()).hexdigest()[:32]


def is_valid_event_id(value: str) -> bool:
    """Whether Google accepts ``value`` as a client-chosen event id (base32hex, 5-1024 characters)."""
    return bool(_EVENT_ID.match(value))


def fingerprint(
    start: datetime | date | None, end: datetime | date | None, summary: str, location: str
) -> str:
    """A short hash of the fields Punctual manages, as Google would store them. Written into the private
    properties with every write, recomputed on read by :func:`host_modified`. Times are compared as UTC
    instants so Google's re-rendering of offsets does not look like an edit; ``description`` is left out
    because Google may rewrite its HTML."""

    def norm(value: datetime | date | None) -> str:
        if isinstance(value, datetime):
            return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
        return "" if value is None else f"date:{value.isoformat()}"

    canonical = json.dumps([norm(start), norm(end), summary or "", location or ""], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def format_event_time(value: datetime, timezone: str | None) -> dict[str, str]:
    """An ``EventDateTime``: local wall time with its offset plus ``timeZone`` when a zone is given (Google
    then shows and repeats the event in that zone), else the UTC instant with ``Z``."""
    if timezone is None:
        return {"dateTime": ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")}
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {timezone!r}") from exc
    local = ensure_utc(value).astimezone(zone)
    return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": timezone}


def event_body(draft: EventDraft) -> dict[str, Any]:
    """The JSON Google gets for ``draft`` (insert adds ``id``; patch sends it as is). Every write carries our
    private properties, so a later read can attribute the event and spot the host's edits."""
    body: dict[str, Any] = {
        "summary": draft.summary,
        "description": draft.description,
        "location": draft.location,
        "start": format_event_time(draft.start, draft.timezone),
        "end": format_event_time(draft.end, draft.timezone),
        "transparency": draft.transparency,
        "extendedProperties": {
            "private": {
                PROP_APPOINTMENT_ID: draft.appointment_id,
                PROP_VERSION: str(draft.version),
                PROP_FINGERPRINT: fingerprint(draft.start, draft.end, draft.summary, draft.location),
            }
        },
    }
    if draft.attendees:
        body["attendees"] = [
            {
                "email": a.email,
                **({"displayName": a.display_name} if a.display_name else {}),
                **({"optional": True} if a.optional else {}),
            }
            for a in draft.attendees
        ]
    if draft.reminder_minutes is None:
        body["reminders"] = {"useDefault": True}
    else:
        # Google allows at most 5 overrides (§4.3); extra ones would fail the whole write.
        body["reminders"] = {
            "useDefault": False,
            "overrides": [{"method": "popup", "minutes": int(m)} for m in draft.reminder_minutes[:5]],
        }
    return body


def private_properties(event: GoogleEvent | Mapping[str, Any]) -> Mapping[str, str]:
    """``extendedProperties.private`` of a parsed or raw event ({} when absent)."""
    if isinstance(event, GoogleEvent):
        return event.private
    ext = event.get("extendedProperties")
    private = ext.get("private") if isinstance(ext, Mapping) else None
    return private if isinstance(private, Mapping) else {}


def appointment_id_of(event: GoogleEvent | Mapping[str, Any]) -> str | None:
    """The Punctual appointment id an event was written for; None for events we did not write."""
    value = private_properties(event).get(PROP_APPOINTMENT_ID)
    return value if isinstance(value, str) and value else None


def version_of(event: GoogleEvent | Mapping[str, Any]) -> int | None:
    """The appointment version of our last write to this event (None if not ours or unreadable)."""
    value = private_properties(event).get(PROP_VERSION)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_own_write(event: GoogleEvent, known_etag: str | None) -> bool:
    """True when ``event`` is exactly what our last write produced: its etag equals the one stored from our
    write's response. A sync (or push) that brings back our own write is then a no-op."""
    return known_etag is not None and event.etag is not None and hmac.compare_digest(event.etag, known_etag)


def host_modified(event: GoogleEvent) -> bool | None:
    """Whether the host changed the fields we manage (times, summary, location) since our last write.

    None for events we did not write (no fingerprint); for cancelled events check ``event.cancelled`` first.
    Needs no stored state: the fingerprint we wrote travels with the event, and Google keeps private
    properties when the host edits the event in its UI."""
    stored = private_properties(event).get(PROP_FINGERPRINT)
    if not stored:
        return None
    start: datetime | date | None = event.start if event.start is not None else event.start_date
    end: datetime | date | None = event.end if event.end is not None else event.end_date
    return not hmac.compare_digest(stored, fingerprint(start, end, event.summary, event.location))


def parse_event(data: Mapping[str, Any]) -> GoogleEvent:
    """A :class:`GoogleEvent` from Google's JSON (raises ValueError/KeyError/TypeError when malformed; the
    client turns those into :class:`GoogleUnavailable`)."""
    start, start_date, tz = _parse_event_time(data.get("start"))
    end, end_date, _ = _parse_event_time(data.get("end"))
    ext = data.get("extendedProperties") or {}
    private = ext.get("private") if isinstance(ext, Mapping) else None
    updated = data.get("updated")
    seq = data.get("sequence")
    return GoogleEvent(
        id=str(data["id"]),
        status=str(data.get("status") or "confirmed"),
        etag=data.get("etag"),
        summary=str(data.get("summary") or ""),
        description=str(data.get("description") or ""),
        location=str(data.get("location") or ""),
        start=start,
        end=end,
        start_date=start_date,
        end_date=end_date,
        timezone=tz,
        updated=_parse_rfc3339(updated) if updated else None,
        sequence=int(seq) if seq is not None else None,
        html_link=data.get("htmlLink"),
        private={str(k): str(v) for k, v in private.items()} if isinstance(private, Mapping) else {},
        raw=dict(data),
    )


def parse_push_headers(headers: HeaderItems) -> PushNotification:
    """Read the ``X-Goog-*`` headers of a push (case-insensitive) without verifying them: use the channel id
    to look up the stored channel, then :func:`verify_push`. Raises :class:`GooglePushRejected` when a
    required header is missing."""
    channel_id = header(headers, "x-goog-channel-id")
    resource_id = header(headers, "x-goog-resource-id")
    state = header(headers, "x-goog-resource-state")
    if not channel_id or not resource_id or not state:
        raise GooglePushRejected("missing X-Goog-Channel-ID, X-Goog-Resource-ID or X-Goog-Resource-State")
    number = header(headers, "x-goog-message-number")
    try:
        message_number = int(number) if number is not None else None
    except ValueError:
        message_number = None
    return PushNotification(
        channel_id=channel_id,
        resource_id=resource_id,
        resource_state=state,
        message_number=message_number,
        resource_uri=header(headers, "x-goog-resource-uri"),
        channel_expiration=header(headers, "x-goog-channel-expiration"),
        channel_token=header(headers, "x-goog-channel-token"),
    )


def verify_push(
    headers: HeaderItems,
    *,
    channel_id: str,
    channel_token: str,
    resource_id: str | None = None,
) -> PushNotification:
    """Check a push against the stored channel and return it parsed; :class:`GooglePushRejected` otherwise.

    Google does not sign pushes (§4.8): the channel token we chose is the shared secret, compared in constant
    time. A stored channel without a token cannot be verified and is refused."""
    note = parse_push_headers(headers)
    if not channel_token:
        raise GooglePushRejected("the stored channel has no token")
    if not hmac.compare_digest(note.channel_id.encode(), channel_id.encode()):
        raise GooglePushRejected("channel id mismatch")
    if not hmac.compare_digest((note.channel_token or "").encode(), channel_token.encode()):
        raise GooglePushRejected("channel token mismatch")
    if resource_id is not None and not hmac.compare_digest(note.resource_id.encode(), resource_id.encode()):
        raise GooglePushRejected("resource id mismatch")
    return note


# --------------------------------------------------------------------------------------------- client


class GoogleCalendarClient(OAuthHttpClient):
    """Calls Google for one OAuth client. Thread-safe as far as the underlying ``httpx.Client`` is."""

    provider = "Google"
    unavailable_error = GoogleUnavailable
    rejected_error = GoogleRequestRejected

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        http: httpx.Client | None = None,
        oauth_base: str = DEFAULT_OAUTH_BASE,
        token_base: str = DEFAULT_TOKEN_BASE,
        api_base: str = DEFAULT_API_BASE,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        clock: Clock | None = None,
        send_updates: str = "none",
        timeout: float = 15.0,
    ) -> None:
        # The clock is for token expiry when no ``now`` is passed and to turn an HTTP-date Retry-After into
        # seconds.
        self._init_client(client_id=client_id, client_secret=client_secret, redirect_uri=redirect_uri,
                          api_base=api_base, oauth_base=oauth_base, clock=clock, http=http, timeout=timeout)
        self.token_base = token_base.rstrip("/")
        self.scopes = tuple(scopes)
        # Punctual's workflows do the reminding, so by default Google sends attendees no e-mail of its own.
        self.send_updates = send_updates

    # ------------------------------------------------------------------------------------------ OAuth

    def authorization_url(
        self,
        state: str,
        code_challenge: str,
        *,
        scopes: Iterable[str] | None = None,
        login_hint: str | None = None,
    ) -> str:
        """Where to send the user's browser (§4.1). ``access_type=offline`` gets a refresh token and
        ``prompt=consent`` makes Google issue a fresh one even on re-consent; PKCE is always S256."""
        params = {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": " ".join(self.scopes if scopes is None else tuple(scopes)),
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        return f"{self.oauth_base}{AUTHORIZE_PATH}?{urlencode(params)}"

    def start_authorization(
        self, *, state: str | None = None, scopes: Iterable[str] | None = None, login_hint: str | None = None
    ) -> AuthorizationRequest:
        """A fresh state and PKCE verifier plus the URL built from them."""
        state = state or secrets.token_urlsafe(24)
        verifier = make_code_verifier()
        url = self.authorization_url(
            state, code_challenge_s256(verifier), scopes=scopes, login_hint=login_hint
        )
        return AuthorizationRequest(url=url, state=state, code_verifier=verifier)

    def exchange_code(self, code: str, code_verifier: str, *, now: datetime | None = None) -> GoogleTokens:
        """Trade the callback's ``code`` for tokens. :class:`GoogleInvalidGrant` for a bad, reused or expired
        code or a verifier that does not match the challenge. Check :meth:`GoogleTokens.missing_scopes`: the
        user may have unticked a scope on the consent screen."""
        form = {
            "code": code,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "redirect_uri": self.redirect_uri,
            "grant_type": "authorization_code",
            "code_verifier": code_verifier,
        }
        return self._token_request(form, now=now, op="exchange code", previous_refresh=None)

    def refresh(self, refresh_token: str, now: datetime | None = None) -> GoogleTokens:
        """A new access token. Google normally does not rotate refresh tokens: the result carries the one
        passed in, unless Google sent a new one (then ``refresh_token_rotated`` is True: store it).
        :class:`GoogleInvalidGrant` means the connection needs re-authorization."""
        form = {
            "refresh_token": refresh_token,
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "grant_type": "refresh_token",
        }
        return self._token_request(form, now=now, op="refresh", previous_refresh=refresh_token)

    def revoke(self, token: str) -> bool:
        """Revoke a token (a refresh token revokes the whole grant). True when revoked now, False when Google
        already considered it invalid: disconnecting is idempotent."""
        url = f"{self.token_base}/revoke?{urlencode({'token': token})}"
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        response = self._send("POST", url, op="revoke", headers=headers, content=b"")
        if response.is_success:
            return True
        error = self._oauth_error(response, "revoke")
        if response.status_code == 400 and error.reason in ("invalid_token", "invalid_grant"):
            return False
        raise error

    # --------------------------------------------------------------------------------------- calendars

    def list_calendars(
        self, access_token: str, *, min_access_role: str | None = None
    ) -> list[GoogleCalendar]:
        """``calendarList.list``, every page: the calendars the user can pick. ``min_access_role="writer"``
        keeps only calendars we could write events to."""
        calendars: list[GoogleCalendar] = []
        page_token: str | None = None
        for _ in range(MAX_SYNC_PAGES):
            params: dict[str, str] = {"maxResults": "250"}
            if min_access_role:
                params["minAccessRole"] = min_access_role
            if page_token:
                params["pageToken"] = page_token
            data = self._api_json(
                "GET", "/users/me/calendarList", access_token, op="list calendars", params=params
            )
            try:
                for item in data.get("items") or []:
                    calendars.append(
                        GoogleCalendar(
                            id=str(item["id"]),
                            summary=str(item.get("summaryOverride") or item.get("summary") or item["id"]),
                            time_zone=item.get("timeZone"),
                            access_role=str(item.get("accessRole") or "reader"),
                            primary=bool(item.get("primary", False)),
                            raw=item,
                        )
                    )
            except (KeyError, TypeError, AttributeError) as exc:
                raise GoogleUnavailable(f"Google list calendars: malformed response ({exc!r})") from exc
            page_token = data.get("nextPageToken")
            if not page_token:
                return calendars
        raise GoogleUnavailable("Google list calendars: too many pages")

    # ------------------------------------------------------------------------------------------ events

    def insert_event(
        self, access_token: str, calendar_id: str, draft: EventDraft, *, event_id: str | None = None
    ) -> InsertResult:
        """``events.insert`` with a client-chosen id (default :func:`event_id_for` of the appointment), so
        the call is idempotent: a 409 ``duplicate`` means an earlier attempt (or a concurrent one) created it;
        the existing event is fetched and returned with ``created=False``.

        :class:`GoogleDuplicateId` only when the id holds another appointment's event or cannot be read."""
        event_id = event_id or event_id_for(draft.appointment_id)
        if not is_valid_event_id(event_id):
            raise ValueError(f"invalid Google event id {event_id!r}: base32hex, 5-1024 characters")
        body = {"id": event_id, **event_body(draft)}
        try:
            data = self._api_json(
                "POST",
                f"{_calendar_path(calendar_id)}/events",
                access_token,
                op="insert event",
                json=body,
                params={"sendUpdates": self.send_updates},
            )
        except GoogleDuplicateId as dup:
            try:
                existing = self.get_event(access_token, calendar_id, event_id)
            except GoogleNotFound as exc:
                # The id is reserved (a deleted, purged event [U]): only a new generation helps.
                raise GoogleDuplicateId(
                    f"Google insert event: id {event_id} is reserved but cannot be read",
                    http_status=409,
                    reason="duplicate",
                ) from exc
            owner = existing.appointment_id
            if owner is not None and owner != draft.appointment_id:
                raise GoogleDuplicateId(
                    f"Google insert event: id {event_id} belongs to another appointment",
                    http_status=409,
                    reason="duplicate",
                ) from dup
            return InsertResult(event=existing, created=False)
        return InsertResult(event=_event_from(data, "insert event"), created=True)

    def get_event(self, access_token: str, calendar_id: str, event_id: str) -> GoogleEvent:
        """``events.get``. A deleted event may come back with ``status == "cancelled"`` rather than 404."""
        data = self._api_json("GET", _event_path(calendar_id, event_id), access_token, op="get event")
        return _event_from(data, "get event")

    def patch_event(
        self,
        access_token: str,
        calendar_id: str,
        event_id: str,
        draft: EventDraft,
        *,
        if_match: str | None = None,
    ) -> GoogleEvent:
        """``events.patch`` with every field we manage (and fresh private properties); fields the host added
        (conference data, colours, their own attendees' replies) are left alone. ``if_match`` (an etag) makes
        Google refuse with :class:`GooglePreconditionFailed` when the event changed since it was read."""
        return self.patch_event_fields(
            access_token, calendar_id, event_id, event_body(draft), if_match=if_match
        )

    def patch_event_fields(
        self,
        access_token: str,
        calendar_id: str,
        event_id: str,
        fields: Mapping[str, Any],
        *,
        if_match: str | None = None,
    ) -> GoogleEvent:
        """``events.patch`` with a raw partial body (arrays sent replace the stored ones, §4.5)."""
        headers = {"If-Match": if_match} if if_match else None
        data = self._api_json(
            "PATCH",
            _event_path(calendar_id, event_id),
            access_token,
            op="patch event",
            json=dict(fields),
            params={"sendUpdates": self.send_updates},
            extra_headers=headers,
        )
        return _event_from(data, "patch event")

    def delete_event(self, access_token: str, calendar_id: str, event_id: str) -> bool:
        """``events.delete``. True when deleted now; False when it was already gone (410 ``deleted`` or 404),
        which is success: deleting is idempotent."""
        try:
            self._api(
                "DELETE",
                _event_path(calendar_id, event_id),
                access_token,
                op="delete event",
                params={"sendUpdates": self.send_updates},
            )
        except GoogleNotFound:  # GoogleGone included
            return False
        return True

    def list_events(
        self,
        access_token: str,
        calendar_id: str,
        *,
        sync_token: str | None = None,
        page_token: str | None = None,
        time_min: datetime | None = None,
        time_max: datetime | None = None,
        private_filter: Mapping[str, str] | None = None,
        show_deleted: bool | None = None,
        single_events: bool = True,
        max_results: int = 250,
    ) -> EventPage:
        """One ``events.list`` page. With ``sync_token`` Google forbids ``time_min``/``time_max``/property
        filters (§4.7), so passing both is a programming error (ValueError). ``private_filter`` becomes
        ``privateExtendedProperty=key=value`` constraints (all must match). HTTP 410 raises
        :class:`GoogleSyncTokenExpired`."""
        if sync_token and (time_min or time_max or private_filter):
            raise ValueError("sync_token cannot be combined with time_min, time_max or property filters")
        params: list[tuple[str, str]] = [
            ("singleEvents", "true" if single_events else "false"),
            ("maxResults", str(max_results)),
        ]
        if sync_token:
            params.append(("syncToken", sync_token))
        if page_token:
            params.append(("pageToken", page_token))
        if time_min is not None:
            params.append(("timeMin", _rfc3339(time_min)))
        if time_max is not None:
            params.append(("timeMax", _rfc3339(time_max)))
        if show_deleted is not None:
            params.append(("showDeleted", "true" if show_deleted else "false"))
        for key, value in (private_filter or {}).items():
            params.append(("privateExtendedProperty", f"{key}={value}"))
        data = self._api_json(
            "GET",
            f"{_calendar_path(calendar_id)}/events",
            access_token,
            op="list events",
            params=params,
            sync=True,
        )
        try:
            items = tuple(parse_event(item) for item in data.get("items") or [])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GoogleUnavailable(f"Google list events: malformed event ({exc!r})") from exc
        return EventPage(
            items=items, next_page_token=data.get("nextPageToken"), next_sync_token=data.get("nextSyncToken")
        )

    def sync_events(
        self,
        access_token: str,
        calendar_id: str,
        sync_token: str | None,
        *,
        full_sync_time_min: datetime | None = None,
        max_results: int = 250,
    ) -> SyncResult:
        """Follow every page of an incremental sync (``sync_token`` given) or a full sync (None; then
        ``full_sync_time_min`` bounds it, e.g. 30 days ago). Returns the events and the ``nextSyncToken`` of
        the last page to store. :class:`GoogleSyncTokenExpired` (410) means: wipe the local copy and call
        again with ``sync_token=None``. Nothing is stored here; an error mid-way loses nothing because the old
        token stays valid for a retry."""
        events: list[GoogleEvent] = []
        page_token: str | None = None
        for pages in range(1, MAX_SYNC_PAGES + 1):
            page = self.list_events(
                access_token,
                calendar_id,
                sync_token=sync_token,
                page_token=page_token,
                time_min=None if sync_token else full_sync_time_min,
                max_results=max_results,
            )
            events.extend(page.items)
            if page.next_page_token:
                page_token = page.next_page_token
                continue
            if not page.next_sync_token:
                raise GoogleUnavailable("Google list events: last page without nextSyncToken")
            return SyncResult(
                events=tuple(events),
                next_sync_token=page.next_sync_token,
                full=sync_token is None,
                pages=pages,
            )
        raise GoogleUnavailable("Google list events: too many pages")

    # ---------------------------------------------------------------------------------------- freeBusy

    def free_busy(
        self,
        access_token: str,
        calendar_ids: Iterable[str],
        time_min: datetime,
        time_max: datetime,
    ) -> dict[str, CalendarBusy]:
        """``freeBusy.query``: busy intervals per calendar between two instants (UTC). Check
        :attr:`CalendarBusy.ok`: a calendar Google could not read comes back with ``errors`` and no busy
        intervals, which must not be read as "free"."""
        ids = list(dict.fromkeys(calendar_ids))
        body = {
            "timeMin": _rfc3339(time_min),
            "timeMax": _rfc3339(time_max),
            "timeZone": "UTC",
            "items": [{"id": cid} for cid in ids],
        }
        data = self._api_json("POST", "/freeBusy", access_token, op="free busy", json=body)
        result: dict[str, CalendarBusy] = {}
        try:
            calendars = data.get("calendars") or {}
            for cid in ids:
                entry = calendars.get(cid)
                if entry is None:
                    result[cid] = CalendarBusy(cid, (), ("missingFromResponse",))
                    continue
                busy = tuple(
                    BusyInterval(_parse_rfc3339(b["start"]), _parse_rfc3339(b["end"]))
                    for b in entry.get("busy") or []
                )
                errors = tuple(str(e.get("reason") or "unknown") for e in entry.get("errors") or [])
                result[cid] = CalendarBusy(cid, busy, errors)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise GoogleUnavailable(f"Google free busy: malformed response ({exc!r})") from exc
        return result

    # ------------------------------------------------------------------------------------------- watch

    def watch_events(
        self,
        access_token: str,
        calendar_id: str,
        *,
        address: str,
        token: str,
        channel_id: str | None = None,
        ttl_seconds: int | None = None,
    ) -> WatchChannel:
        """``events.watch``: Google will POST to ``address`` (HTTPS in production) whenever the calendar's
        events change. ``token`` is echoed in every notification (see :func:`new_channel_token`); the channel
        id defaults to a fresh UUID. Re-watch before ``expiration`` and stop the old channel afterwards."""
        channel_id = channel_id or str(uuid.uuid4())
        body: dict[str, Any] = {"id": channel_id, "type": "web_hook", "address": address, "token": token}
        if ttl_seconds is not None:
            body["params"] = {"ttl": str(int(ttl_seconds))}
        data = self._api_json(
            "POST", f"{_calendar_path(calendar_id)}/events/watch", access_token, op="watch events", json=body
        )
        try:
            expiration = data.get("expiration")
            return WatchChannel(
                id=str(data["id"]),
                resource_id=str(data["resourceId"]),
                resource_uri=data.get("resourceUri"),
                # Google echoes the token; fall back to ours if it did not.
                token=str(data.get("token") or token),
                expiration=_from_millis(expiration) if expiration is not None else None,
                calendar_id=calendar_id,
                raw=data,
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise GoogleUnavailable(f"Google watch events: malformed response ({exc!r})") from exc

    def stop_channel(self, access_token: str, channel_id: str, resource_id: str) -> bool:
        """``channels.stop``. True when stopped now, False when Google no longer knows the channel (expired
        or already stopped), which is success."""
        body = {"id": channel_id, "resourceId": resource_id}
        try:
            self._api("POST", "/channels/stop", access_token, op="stop channel", json=body)
        except GoogleNotFound:
            return False
        return True

    # -------------------------------------------------------------------------------------- internals

    def _token_request(
        self, form: dict[str, str], *, now: datetime | None, op: str, previous_refresh: str | None
    ) -> GoogleTokens:
        # Taken before the request goes out, so expires_at errs early rather than late.
        issued_at = ensure_utc(now) if now is not None else self.clock.now()
        headers = {"Accept": "application/json"}
        # Client credentials go in the form body, not a Basic header (§4.1).
        response = self._send("POST", f"{self.token_base}/token", op=op, headers=headers, data=form)
        if not response.is_success:
            raise self._oauth_error(response, op)
        data = self._json_object(response, op)
        try:
            access = data["access_token"]
            expires_in = float(data["expires_in"])
            if not isinstance(access, str) or not access or not math.isfinite(expires_in):
                raise TypeError("access_token must be a non-empty string and expires_in finite")
            new_refresh = data.get("refresh_token")
            if new_refresh is not None and (not isinstance(new_refresh, str) or not new_refresh):
                raise TypeError("refresh_token must be a non-empty string")
        except (KeyError, TypeError, ValueError) as exc:
            raise GoogleUnavailable(f"Google {op}: malformed token response ({exc!r})") from exc
        return GoogleTokens(
            access_token=access,
            refresh_token=new_refresh or previous_refresh,
            expires_at=issued_at + timedelta(seconds=expires_in),
            scope=str(data.get("scope") or ""),
            token_type=str(data.get("token_type") or "Bearer"),
            id_token=data.get("id_token"),
            refresh_token_rotated=previous_refresh is not None
            and new_refresh is not None
            and new_refresh != previous_refresh,
        )

    def _oauth_error(self, response: httpx.Response, op: str) -> GoogleError:
        """Token/revoke endpoint errors: ``{"error": "...", "error_description": "..."}`` (§4.1)."""
        status = response.status_code
        body = json_or_empty(response)
        error = body.get("error")
        # Some OAuth failures come in the API shape ({"error": {...}}); read both.
        if isinstance(error, Mapping):
            error = error.get("status") or error.get("message")
        reason = str(error) if error else None
        description = str(body.get("error_description") or "")
        message = f"Google {op}: HTTP {status} {reason or ''} {description}".rstrip()
        kw: dict[str, Any] = {"http_status": status, "reason": reason}
        if status == 429:
            return self._rate_limited(response, message, kw)
        if status >= 500:
            return GoogleUnavailable(message, retry_after=self._retry_after_seconds(response), **kw)
        if reason == "invalid_grant":
            return GoogleInvalidGrant(message, **kw)
        return GoogleRequestRejected(message, **kw)

    def _api_error(self, response: httpx.Response, op: str, *, sync: bool = False, **_: Any) -> GoogleError:
        """API errors: ``{"error": {"code", "message", "errors": [{"reason", ...}]}}`` (§4.2)."""
        status = response.status_code
        body = json_or_empty(response)
        raw_error = body.get("error")
        error = raw_error if isinstance(raw_error, Mapping) else {}
        raw_details = error.get("errors")
        details = raw_details if isinstance(raw_details, list) else []
        reasons = [str(d.get("reason")) for d in details if isinstance(d, Mapping) and d.get("reason")]
        reason = reasons[0] if reasons else (str(error["status"]) if error.get("status") else None)
        text = str(error.get("message") or "")
        message = f"Google {op}: HTTP {status} {reason or ''} {text}".rstrip()
        kw: dict[str, Any] = {"http_status": status, "reason": reason}
        if status == 429 or (status == 403 and _RATE_REASONS.intersection(reasons)):
            return self._rate_limited(response, message, kw)
        if status >= 500 or status == 408:
            return GoogleUnavailable(message, retry_after=self._retry_after_seconds(response), **kw)
        if status == 401:
            return GoogleAuthError(message, **kw)
        if status == 403 and (
            _SCOPE_REASONS.intersection(reasons) or "insufficient authentication scopes" in text
        ):
            return GoogleInsufficientScope(message, **kw)
        if status == 404:
            return GoogleNotFound(message, **kw)
        if status == 409:
            return GoogleDuplicateId(message, **kw)
        if status == 410:
            # On events.list any 410 means the token (or updatedMin) is unusable; elsewhere it is "deleted".
            if sync or _SYNC_GONE_REASONS.intersection(reasons):
                return GoogleSyncTokenExpired(message, **kw)
            return GoogleGone(message, **kw)
        if status == 412:
            return GooglePreconditionFailed(message, **kw)
        return GoogleRequestRejected(message, **kw)

    def _rate_limited(self, response: httpx.Response, message: str, kw: dict[str, Any]) -> GoogleRateLimited:
        now, retry_at = self._retry_at(response)
        retry_after = None if retry_at is None else max(0.0, (retry_at - now).total_seconds())
        return GoogleRateLimited(message, retry_at=retry_at, retry_after=retry_after, **kw)

    def _retry_after_seconds(self, response: httpx.Response) -> float | None:
        now, retry_at = self._retry_at(response)
        return None if retry_at is None else max(0.0, (retry_at - now).total_seconds())


# ---------------------------------------------------------------------------------------------- helpers


def _calendar_path(calendar_id: str) -> str:
    # Quoted with nothing safe: ids are e-mails, and group calendars contain '#' (must become %23, §4.3).
    return f"/calendars/{quote(calendar_id, safe='')}"


def _event_path(calendar_id: str, event_id: str) -> str:
    return f"{_calendar_path(calendar_id)}/events/{quote(event_id, safe='')}"


def _event_from(data: Mapping[str, Any], op: str) -> GoogleEvent:
    try:
        return parse_event(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GoogleUnavailable(f"Google {op}: malformed event ({exc!r})") from exc


def _parse_event_time(value: Any) -> tuple[datetime | None, date | None, str | None]:
    if not isinstance(value, Mapping):
        return None, None, None
    tz = value.get("timeZone")
    if value.get("dateTime"):
        return _parse_rfc3339(str(value["dateTime"])), None, tz
    if value.get("date"):
        return None, date.fromisoformat(str(value["date"])), tz
    return None, None, tz


def _parse_rfc3339(value: str) -> datetime:
    """RFC 3339 as Google writes it (``Z`` or an offset, optional fractional seconds) to aware UTC."""
    parsed = datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"RFC 3339 time without offset: {value!r}")
    return ensure_utc(parsed)


def _rfc3339(value: datetime) -> str:
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_millis(value: Any) -> datetime:
    # Google sends ``expiration`` as a string of Unix milliseconds (§4.8).
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
