"""Zoom REST v2 and OAuth client (user-managed OAuth app), over an injectable ``httpx.Client``.

Implements contract ``EXTERNAL_APIS.md`` §1: the authorization-code flow (client secret in a Basic header,
optional PKCE S256), refresh with rotation, revoke, ``GET /users/me`` and meeting create/get/update/delete.
It holds no state beyond configuration: tokens come in as arguments and go out as :class:`ZoomTokens`; the
caller persists them (encrypted, see ``automations.store.secrets_box``) and serialises refreshes per credential,
because a refresh rotates the refresh token and two concurrent refreshes invalidate each other.

Every failure is one of the :class:`ZoomError` subclasses below (all ``automations.errors.ProviderError``);
httpx exceptions never escape. The caller pattern for an expired access token::

    try:
        meeting = client.create_meeting(tokens.access_token, request)
    except ZoomAuthError:
        tokens = client.refresh(tokens.refresh_token, now=clock.now())  # under the credential's lock
        store(tokens)                                                   # persist before using it
        meeting = client.create_meeting(tokens.access_token, request)  # a second ZoomAuthError: re-auth

Base URLs are injectable so tests point the client at ``tests/fakes/zoom_server.py``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from automations.clock import Clock, ensure_utc
from automations.errors import (
    MeetingConnectionBroken,
    MeetingDailyLimit,
    MeetingNotFound,
    MeetingRateLimited,
    ProviderError,
)
from providers.base import MeetingInfo, MeetingRequest
from providers.oauth_http import OAuthHttpClient, json_or_empty
from providers.oauth_http import code_challenge_s256 as code_challenge_s256  # re-exported for callers
from providers.oauth_http import make_code_verifier as make_code_verifier  # re-exported for callers

DEFAULT_API_BASE = "https://api.zoom.us/v2"
DEFAULT_OAUTH_BASE = "https://zoom.us"

# Rivet refreshes when 60 s or less remain (contract §1.1); we do the same.
REFRESH_MARGIN = timedelta(seconds=60)

# Meeting settings sent on create (contract §1.4 example): no registration, host controls the room, and Zoom
# sends no e-mail of its own because Punctual's workflows do the reminding.
DEFAULT_MEETING_SETTINGS: Mapping[str, Any] = {
    "join_before_host": False,
    "waiting_room": True,
    "approval_type": 2,
    "email_notification": False,
    "mute_upon_entry": True,
}

TOPIC_MAX = 200
AGENDA_MAX = 2000

# Without a Retry-After on a per-second 429 the contract says to back off 1-2 s; the caller adds jitter.
QPS_DEFAULT_RETRY_AFTER = 1.0


# --------------------------------------------------------------------------------------------- errors


class ZoomError(ProviderError):
    """Base of every Zoom failure. ``http_status`` and ``zoom_code`` (REST ``code`` or OAuth ``error``)
    are kept for logs, and ``tracking_id`` is Zoom's ``x-zm-trackingid`` for support tickets."""

    code = "zoom_error"
    default_retryable = False

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        http_status: int | None = None,
        zoom_code: int | str | None = None,
        retry_after: float | None = None,
        tracking_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            retryable=self.default_retryable if retryable is None else retryable,
            provider_code=None if zoom_code is None else str(zoom_code),
            retry_after=retry_after,
        )
        self.http_status = http_status
        self.zoom_code = zoom_code
        self.tracking_id = tracking_id


class ZoomConnectionBroken(ZoomError, MeetingConnectionBroken):
    """The stored connection cannot be used any more: mark it "needs re-authorization" and alert the user.

    Raised for a missing scope (4700/4711) and for a Zoom user that no longer exists (1001)."""

    code = "zoom_connection_broken"


class ZoomInvalidGrant(ZoomConnectionBroken):
    """The token endpoint refused the grant (``invalid_grant``, ``Invalid Token!``, a bad or reused code).

    On refresh: the refresh token is dead (rotated elsewhere, revoked, expired) and only a new authorization
    helps. On code exchange: the code was bad, reused or older than 5 minutes; restart the flow."""

    code = "zoom_invalid_grant"


class ZoomAuthError(ZoomError):
    """401 / code 124: the access token is invalid or expired. Refresh and retry once; if the retry fails the
    same way the connection needs re-authorization. Not retryable as such: retrying the same token is futile."""

    code = "zoom_auth_error"


class ZoomMeetingNotFound(ZoomError, MeetingNotFound):
    """404 / code 3001: the meeting is gone (deleted in Zoom, or expired). Update callers recreate it;
    :meth:`ZoomClient.delete_meeting` treats it as success."""

    code = "zoom_meeting_not_found"


class ZoomRateLimited(ZoomError, MeetingRateLimited):
    """429. ``retry_after`` is seconds to wait (from ``Retry-After``), ``retry_at`` the same as an instant."""

    code = "zoom_rate_limited"
    default_retryable = True

    def __init__(self, message: str, *, retry_at: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_at = retry_at


class ZoomDailyLimitExceeded(ZoomRateLimited, MeetingDailyLimit):
    """The per-user limit of 100 meeting create/update/delete requests per UTC day. Defer the work for this
    host until ``retry_at`` (the next 00:00 UTC unless Zoom said otherwise) and tell the host."""

    code = "zoom_daily_limit"


class ZoomRequestRejected(ZoomError):
    """Any other 4xx (validation code 300, a client misconfiguration such as ``invalid_client`` or a redirect
    URI mismatch): permanent; retrying the same request gives the same answer. ``fields`` holds Zoom's
    per-field validation messages."""

    code = "zoom_request_rejected"


class ZoomUnavailable(ZoomError):
    """5xx, timeouts, connection failures, malformed success bodies: retry later.

    ``maybe_applied`` is True when the request may have reached Zoom (a read timeout, a dropped connection
    after sending, a 5xx): a retried create can then leave an orphan meeting behind."""

    code = "zoom_unavailable"
    default_retryable = True

    def __init__(self, message: str, *, maybe_applied: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.maybe_applied = maybe_applied


# --------------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ZoomTokens:
    """One token pair from ``/oauth/token``. Tokens are opaque strings; they are kept out of ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime  # aware UTC: the ``now`` passed in + ``expires_in``
    scope: str  # space-separated, as granted
    token_type: str = "bearer"
    api_url: str | None = None  # Zoom's api_url hint: recorded, not used (see ZoomClient.refresh)

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def expires_soon(self, now: datetime, margin: timedelta = REFRESH_MARGIN) -> bool:
        """True when the access token should be refreshed before use (Rivet's 60 s rule)."""
        return ensure_utc(now) >= self.expires_at - margin


@dataclass(frozen=True)
class ZoomUser:
    """The fields of ``GET /users/me`` Punctual uses; ``raw`` keeps the rest."""

    id: str  # the Zoom user id: key for the connection and for the per-user daily limit
    email: str
    account_id: str  # with ``id``, maps ``app_deauthorized`` back to a connection
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    timezone: str | None = None
    type: int | None = None  # 1 basic, 2 licensed
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ZoomMeeting(MeetingInfo):
    """A Zoom meeting: usable wherever a :class:`MeetingInfo` is, plus what Zoom returned.

    ``start_url`` embeds the host's ZAK and expires after about 2 hours: never store it as a permanent link;
    re-read the meeting with :meth:`ZoomClient.get_meeting` when the host needs it."""

    start_url: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    start_time: str | None = None  # as Zoom returned it (GMT, ``...Z``)
    duration: int | None = None
    timezone: str | None = None
    topic: str | None = None
    host_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# -------------------------------------------------------------------------------------------- helpers


def meeting_body(request: MeetingRequest, *, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body Zoom gets for ``request``: a scheduled meeting (type 2) starting at a GMT instant.

    ``start_time`` goes in the GMT ``Z`` form so Zoom never reads it in the account's timezone; ``timezone``
    is display metadata. Topic and agenda are cut to Zoom's limits rather than failing the booking."""
    body: dict[str, Any] = {
        "topic": request.topic[:TOPIC_MAX],
        "type": 2,
        "start_time": format_zoom_time(request.start_at),
        "duration": int(request.duration_minutes),
        "timezone": request.timezone,
        "agenda": request.agenda[:AGENDA_MAX],
    }
    if settings is not None:
        body["settings"] = dict(settings)
    return body


def format_zoom_time(value: datetime) -> str:
    """``yyyy-MM-ddTHH:mm:ssZ`` in UTC (naive values are taken to be UTC already)."""
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_utc_midnight(now: datetime) -> datetime:
    """The next 00:00 UTC strictly after ``now``: when Zoom's per-user daily limit resets."""
    now = ensure_utc(now)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


# --------------------------------------------------------------------------------------------- client


class ZoomClient(OAuthHttpClient):
    """Calls Zoom for one OAuth app. Thread-safe as far as the underlying ``httpx.Client`` is."""

    provider = "Zoom"
    unavailable_error = ZoomUnavailable
    rejected_error = ZoomRequestRejected

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        http: httpx.Client | None = None,
        api_base: str = DEFAULT_API_BASE,
        oauth_base: str = DEFAULT_OAUTH_BASE,
        clock: Clock | None = None,
        meeting_settings: Mapping[str, Any] | None = None,
        timeout: float = 15.0,
    ) -> None:
        # The clock only turns an ISO Retry-After into seconds; token expiry uses the ``now`` passed in.
        self._init_client(client_id=client_id, client_secret=client_secret, redirect_uri=redirect_uri,
                          api_base=api_base, oauth_base=oauth_base, clock=clock, http=http, timeout=timeout)
        self.meeting_settings = dict(
            DEFAULT_MEETING_SETTINGS if meeting_settings is None else meeting_settings
        )

    # ------------------------------------------------------------------------------------------ OAuth

    def authorize_url(self, state: str, code_challenge: str | None = None) -> str:
        """Where to send the user's browser. ``state`` comes back unchanged on the redirect; the caller
        checks it (and keeps the PKCE verifier for :meth:`exchange_code`)."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": state,
        }
        if code_challenge is not None:
            params["code_challenge"] = code_challenge
            params["code_challenge_method"] = "S256"
        return f"{self.oauth_base}/oauth/authorize?{urlencode(params)}"

    def exchange_code(
        self, code: str, code_verifier: str | None = None, *, now: datetime | None = None
    ) -> ZoomTokens:
        """Trade an authorization code (single-use, 5 minutes) for tokens; ``expires_at`` is ``now`` plus
        ``expires_in``. Raises :class:`ZoomInvalidGrant` for a bad, reused or expired code."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri}
        if code_verifier is not None:
            form["code_verifier"] = code_verifier
        return self._token_request(form, now=now, op="exchange code")

    def refresh(self, refresh_token: str, now: datetime | None = None) -> ZoomTokens:
        """Refresh the access token. Zoom rotates the refresh token: the returned one replaces the old,
        which stops working at once. Persist the result before using it, and never run two refreshes of
        one credential at the same time. Raises :class:`ZoomInvalidGrant` when re-authorization is needed.

        The token response may carry ``api_url``; it is recorded on :class:`ZoomTokens` but calls keep
        using the configured ``api_base`` (contract marks the hint [C], and tests must stay on the fake)."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._token_request(form, now=now, op="refresh")

    def revoke(self, token: str) -> None:
        """Revoke an access or refresh token (disconnect). A token Zoom already considers invalid counts as
        revoked, so disconnecting is idempotent."""
        try:
            self._oauth_post("/oauth/revoke", {"token": token}, op="revoke")
        except ZoomInvalidGrant:
            return None

    # ------------------------------------------------------------------------------------------- REST

    def me(self, access_token: str) -> ZoomUser:
        """``GET /users/me``: who authorized this token."""
        data = self._api_json("GET", "/users/me", access_token, op="get user")
        try:
            return ZoomUser(
                id=str(data["id"]),
                email=str(data.get("email") or ""),
                account_id=str(data["account_id"]),
                first_name=str(data.get("first_name") or ""),
                last_name=str(data.get("last_name") or ""),
                display_name=str(data.get("display_name") or ""),
                timezone=data.get("timezone"),
                type=data.get("type"),
                raw=data,
            )
        except (KeyError, TypeError) as exc:
            raise ZoomUnavailable(f"Zoom get user: malformed response ({exc!r})") from exc

    def create_meeting(self, access_token: str, request: MeetingRequest) -> ZoomMeeting:
        """``POST /users/me/meetings``. The host is whoever owns ``access_token`` (user-managed app), so
        ``request.host_user_id`` (Punctual's id) is not sent. Counts toward the host's 100/day budget."""
        body = meeting_body(request, settings=self.meeting_settings)
        data = self._api_json("POST", "/users/me/meetings", access_token, json=body, op="create meeting")
        return _meeting_from(data)

    def get_meeting(self, access_token: str, meeting_id: int | str) -> ZoomMeeting:
        """``GET /meetings/{id}`` (for a fresh ``start_url``, or to check a meeting still exists)."""
        data = self._api_json("GET", _meeting_path(meeting_id), access_token, op="get meeting", meeting=True)
        return _meeting_from(data)

    def update_meeting(self, access_token: str, meeting_id: int | str, request: MeetingRequest) -> None:
        """``PATCH /meetings/{id}`` (204) with topic, time, duration, timezone and agenda; settings the host
        may have changed in Zoom are left alone. :class:`ZoomMeetingNotFound` means recreate it."""
        body = meeting_body(request)
        body.pop("type")  # the meeting keeps its type; PATCH takes any subset of the create fields
        self._api(
            "PATCH", _meeting_path(meeting_id), access_token, json=body, op="update meeting", meeting=True
        )

    def delete_meeting(self, access_token: str, meeting_id: int | str) -> bool:
        """``DELETE /meetings/{id}``. True when deleted now, False when it was already gone (404/3001),
        which is success: deleting is idempotent."""
        try:
            self._api("DELETE", _meeting_path(meeting_id), access_token, op="delete meeting", meeting=True)
        except ZoomMeetingNotFound:
            return False
        return True

    # -------------------------------------------------------------------------------------- internals

    def _basic_auth(self) -> str:
        raw = f"{self.client_id}:{self._client_secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _token_request(self, form: dict[str, str], *, now: datetime | None, op: str) -> ZoomTokens:
        # Taken before the request goes out, so expires_at errs early rather than late.
        issued_at = ensure_utc(now) if now is not None else self.clock.now()
        data = self._oauth_post("/oauth/token", form, op=op)
        try:
            access = data["access_token"]
            refresh = data["refresh_token"]
            expires_in = float(data["expires_in"])
            scope = data.get("scope") or ""
            if not (isinstance(access, str) and isinstance(refresh, str) and access and refresh):
                raise TypeError("token fields must be non-empty strings")
        except (KeyError, TypeError, ValueError) as exc:
            raise ZoomUnavailable(f"Zoom {op}: malformed token response ({exc!r})") from exc
        return ZoomTokens(
            access_token=access,
            refresh_token=refresh,
            expires_at=issued_at + timedelta(seconds=expires_in),
            scope=str(scope),
            token_type=str(data.get("token_type") or "bearer"),
            api_url=data.get("api_url"),
        )

    def _oauth_post(self, path: str, form: dict[str, str], *, op: str) -> dict[str, Any]:
        # Credentials in the Basic header and parameters in a form body, as the contract (§1.1) prescribes.
        headers = {"Authorization": self._basic_auth(), "Accept": "application/json"}
        response = self._send("POST", f"{self.oauth_base}{path}", op=op, headers=headers, data=form)
        if response.is_success:
            return self._json_object(response, op)
        raise self._oauth_error(response, op)

    def _oauth_error(self, response: httpx.Response, op: str) -> ZoomError:
        """Token/revoke endpoint errors: ``{"reason","error"}`` (observed) or ``{"code","message"}`` (the
        documented 47xx table); both are read."""
        status = response.status_code
        tracking = response.headers.get("x-zm-trackingid")
        body = json_or_empty(response)
        error = body.get("error")
        zoom_code = body.get("code")
        reason = str(body.get("reason") or body.get("message") or body.get("error_description") or "")
        ident: int | str | None = error if error is not None else zoom_code
        message = f"Zoom {op}: HTTP {status} {ident or ''} {reason}".rstrip()
        kw: dict[str, Any] = {"http_status": status, "zoom_code": ident, "tracking_id": tracking}
        if status == 429:
            return self._rate_limited(response, message, kw)
        if status >= 500:
            return ZoomUnavailable(message, **kw)
        low = reason.lower()
        if error == "invalid_grant" or zoom_code == 4711:
            return ZoomInvalidGrant(message, **kw)
        # Zoom answers a dead refresh token or a bad code with invalid_request + "Invalid Token!" /
        # "Invalid authorization code ..." (contract §1.1); both mean the grant itself is unusable.
        if error == "invalid_request" and ("invalid token" in low or "authorization code" in low):
            return ZoomInvalidGrant(message, **kw)
        return ZoomRequestRejected(message, **kw)

    def _api_error(self, response: httpx.Response, op: str, *, meeting: bool = False, **_: Any) -> ZoomError:
        status = response.status_code
        tracking = response.headers.get("x-zm-trackingid")
        body = json_or_empty(response)
        zoom_code = body.get("code")
        text = str(body.get("message") or "")
        message = f"Zoom {op}: HTTP {status} code {zoom_code} {text}".rstrip()
        kw: dict[str, Any] = {"http_status": status, "zoom_code": zoom_code, "tracking_id": tracking}
        scope_missing = zoom_code == 4711 or (zoom_code == 4700 and "scope" in text.lower())
        if status == 429 or zoom_code == 429:
            return self._rate_limited(response, message, kw)
        if status >= 500:
            return ZoomUnavailable(message, **kw)
        if scope_missing:
            return ZoomConnectionBroken(message, **kw)
        if status == 401 or zoom_code == 124:
            return ZoomAuthError(message, **kw)
        if zoom_code == 3001 or (status == 404 and meeting and zoom_code is None):
            return ZoomMeetingNotFound(message, **kw)
        if zoom_code == 1001:
            return ZoomConnectionBroken(message, **kw)
        if status == 408:
            return ZoomUnavailable(message, **kw)
        fields: dict[str, list[str]] = {}
        for item in body.get("errors") or []:
            if isinstance(item, dict) and item.get("field"):
                fields.setdefault(str(item["field"]), []).append(str(item.get("message") or "invalid"))
        error = ZoomRequestRejected(message, **kw)
        error.fields = fields
        return error

    def _rate_limited(self, response: httpx.Response, message: str, kw: dict[str, Any]) -> ZoomRateLimited:
        body = json_or_empty(response)
        limit_type = response.headers.get("x-ratelimit-type", "").lower()
        daily = "daily" in limit_type or "daily rate limit" in str(body.get("message") or "").lower()
        now, retry_at = self._retry_at(response)
        if retry_at is None:
            retry_at = next_utc_midnight(now) if daily else now + timedelta(seconds=QPS_DEFAULT_RETRY_AFTER)
        retry_after = max(0.0, (retry_at - now).total_seconds())
        cls = ZoomDailyLimitExceeded if daily else ZoomRateLimited
        return cls(message, retry_at=retry_at, retry_after=retry_after, **kw)


# ---------------------------------------------------------------------------------------------- helpers


def _meeting_path(meeting_id: int | str) -> str:
    # Quoted so an odd id cannot walk the URL path; real ids are integers.
    return f"/meetings/{quote(str(meeting_id), safe='')}"


def _meeting_from(data: dict[str, Any]) -> ZoomMeeting:
    try:
        return ZoomMeeting(
            external_id=str(data["id"]),
            join_url=str(data["join_url"]),
            start_url=data.get("start_url"),
            password=data.get("password"),
            start_time=data.get("start_time"),
            duration=data.get("duration"),
            timezone=data.get("timezone"),
            topic=data.get("topic"),
            host_id=data.get("host_id"),
            raw=data,
        )
    except KeyError as exc:
        raise ZoomUnavailable(f"Zoom meeting response lacks {exc}") from exc

