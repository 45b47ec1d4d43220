"""Users' Google accounts: connect (OAuth authorization code + PKCE, single-use state), tokens encrypted
at rest with the same secrets box as Zoom, refresh before expiry (and once after a 401), revoke on
disconnect; ``invalid_grant`` marks the connection broken and tells the user in the app. Also: the
user's calendar list (to link a calendar member to one of them) and the link itself.

Google does not rotate refresh tokens (contract §4.1), so concurrent refreshes are harmless and need
no lease; a rotated one, if Google ever sends it, is stored.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.errors import BadRequest, Conflict, NotFound, ValidationError
from automations.store.db import table_of
from automations.store.models import (
    Calendar,
    CalendarMember,
    GoogleCalendarSync,
    GoogleConnection,
    User,
)
from automations.store.oauth import ACTIVE, OAuthConnections, claim_state, issue_state, mark_connection_broken
from providers.google_calendar import (
    GoogleAuthError,
    GoogleCalendar,
    GoogleCalendarClient,
    GoogleConnectionBroken,
    GoogleError,
    GoogleTokens,
)

PROVIDER = "google"
STATE_TTL = timedelta(minutes=10)
CALLBACK_PATH = "/integrations/google/callback"
BROKEN_NOTE_TITLE = "Google Calendar disconnected"
T = TypeVar("T")


class GoogleNotConfigured(NotFound):
    code = "google_not_configured"


class GoogleAuthorizationFailed(BadRequest):
    code = "google_authorization_failed"


@dataclass(frozen=True)
class GoogleSettings:
    """The Google OAuth app, from the environment (``GOOGLE_*``); base URLs point tests at the fake."""

    client_id: str | None
    client_secret: str | None
    public_url: str
    oauth_base: str = "https://accounts.google.com"
    token_base: str = "https://oauth2.googleapis.com"
    api_base: str = "https://www.googleapis.com/calendar/v3"
    sync_minutes: int = 5
    #: Where pushes go when it is not ``$PUNCTUAL_PUBLIC_URL/hooks/google`` (a tunnel, or tests).
    push_url: str | None = None

    @classmethod
    def from_env(cls, public_url: str, environ=None) -> GoogleSettings:
        env = os.environ if environ is None else environ
        return cls(env.get("GOOGLE_CLIENT_ID") or None, env.get("GOOGLE_CLIENT_SECRET") or None, public_url,
                   env.get("GOOGLE_OAUTH_BASE", cls.oauth_base), env.get("GOOGLE_TOKEN_BASE", cls.token_base),
                   env.get("GOOGLE_API_BASE", cls.api_base), int(env.get("GOOGLE_SYNC_MINUTES", "5")),
                   env.get("GOOGLE_PUSH_URL") or None)

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    @property
    def push_address(self) -> str | None:
        """Where Google may push (HTTPS only, as Google requires); None: sync periodically instead."""
        if self.push_url:
            return self.push_url
        return f"{self.public_url.rstrip('/')}/hooks/google" if self.public_url.startswith("https://") else None

    def client(self, **kw) -> GoogleCalendarClient:
        if not self.client_id or not self.client_secret:  # not self.configured, spelt out for the type checker
            raise GoogleNotConfigured("Google is not configured on this Punctual: set GOOGLE_CLIENT_ID and "
                                      "GOOGLE_CLIENT_SECRET")
        return GoogleCalendarClient(client_id=self.client_id, client_secret=self.client_secret,
                                    redirect_uri=self.public_url.rstrip("/") + CALLBACK_PATH,
                                    oauth_base=self.oauth_base, token_base=self.token_base, api_base=self.api_base,
                                    **kw)


def connection_for(session: Session, user_id: str) -> GoogleConnection | None:
    return session.scalar(select(GoogleConnection).where(GoogleConnection.user_id == user_id))


def mark_broken(session: Session, user_id: str, reason: str, now: datetime) -> bool:
    """Google refused the credential for good: broken, dead tokens dropped, the user alerted once."""
    return mark_connection_broken(
        session, connection_for(session, user_id), reason, now, title=BROKEN_NOTE_TITLE,
        body=("Google no longer accepts Punctual's access to your Google Calendar, so appointments are not "
              "written there and your Google busy times no longer block bookings. Reconnect Google from your "
              "profile's Integrations page."))


class GoogleConnections(OAuthConnections):
    """Connect, use and disconnect users' Google accounts, over one client and one secrets box."""

    provider_name = "Google"
    provider_error = GoogleError
    client: GoogleCalendarClient

    # -- connect -------------------------------------------------------------------------------------

    def start(self, user_id: str, *, now: datetime) -> tuple[str, datetime]:
        with self.factory() as session, session.begin():
            user = session.get(User, user_id)
            if user is None:
                raise BadRequest(f"no user {user_id!r}")
            state, challenge, expires_at = issue_state(session, self.box, provider=PROVIDER, user_id=user_id,
                                                       now=now, ttl=STATE_TTL)
            hint = user.email
        return self.client.authorization_url(state, challenge, login_hint=hint), expires_at

    def complete(self, state: str | None, code: str | None, *, now: datetime) -> str:
        """Finish the redirect; returns the connected user's name."""
        if not state or not code:
            raise GoogleAuthorizationFailed("The Google redirect is missing its code or state. Start again.")
        with self.factory() as session, session.begin():
            claimed = claim_state(session, self.box, provider=PROVIDER, state=state, now=now)
        if claimed.problem == "unknown":
            raise GoogleAuthorizationFailed("This Google connection link is not valid (already used or never "
                                            "issued). Start again from your profile.")
        if claimed.problem == "expired":
            raise GoogleAuthorizationFailed("This Google connection link has expired. Start again.")
        if claimed.problem or claimed.verifier is None:
            raise GoogleAuthorizationFailed("This Google connection link can no longer be read. Start again.")
        user_id = claimed.user_id
        if user_id is None:
            raise GoogleAuthorizationFailed("This Google connection link is not valid. Start again.")
        try:
            tokens = self.client.exchange_code(code, claimed.verifier, now=now)
        except GoogleError as exc:
            raise GoogleAuthorizationFailed(f"Google refused the connection ({exc.message}). Start again.") from None
        missing = tokens.missing_scopes()
        if missing:
            self._revoke(tokens.refresh_token or tokens.access_token)
            raise GoogleAuthorizationFailed("Punctual needs access to your calendar events and free/busy times; "
                                            "please tick every box on Google's consent screen.")
        with self.factory() as session, session.begin():
            user = session.get(User, user_id)
            if user is None:
                raise GoogleAuthorizationFailed("The user who started this Google connection no longer exists.")
            conn = connection_for(session, user_id) or GoogleConnection(
                location_id=user.location_id, user_id=user_id, created_at=now)
            session.add(conn)
            self._store(conn, tokens, now)
            conn.status, conn.status_reason = ACTIVE, None
            return user.name

    def disconnect(self, user_id: str, *, now: datetime) -> bool:
        """Revoke the grant at Google and delete the tokens and sync state; False when not connected."""
        with self.factory() as session, session.begin():
            conn = connection_for(session, user_id)
            if conn is None:
                return False
            token = self._plain(conn.refresh_token_enc) or self._plain(conn.access_token_enc)
            session.delete(conn)
            session.execute(table_of(GoogleCalendarSync).delete().where(GoogleCalendarSync.user_id == user_id))
        if token:
            self._revoke(token)
        return True

    # -- use -----------------------------------------------------------------------------------------

    def call(self, user_id: str, fn: Callable[[str], T], *, now: datetime) -> T:
        """Run ``fn(access_token)`` for this user, refreshing before expiry and once after a 401;
        ``invalid_grant`` (or lost scopes) marks the connection broken and re-raises."""
        try:
            token = self._access_token(user_id, now, force=False)
            try:
                return fn(token)
            except GoogleAuthError:
                return fn(self._access_token(user_id, now, force=True))
        except GoogleConnectionBroken as exc:
            with self.factory() as session, session.begin():
                mark_broken(session, user_id, exc.message, now)
            raise

    def list_calendars(self, user_id: str, *, now: datetime) -> list[GoogleCalendar]:
        return self.call(user_id, lambda token: self.client.list_calendars(token, min_access_role="writer"), now=now)

    def _access_token(self, user_id: str, now: datetime, *, force: bool) -> str:
        with self.factory() as session:
            conn = connection_for(session, user_id)
            if conn is None or conn.status != ACTIVE or not conn.refresh_token_enc:
                raise NotFound("this user has no working Google connection")
            access, refresh, expires = (self._plain(conn.access_token_enc), self._plain(conn.refresh_token_enc),
                                        conn.expires_at)
        if access and not force and expires and now < expires - timedelta(seconds=60):
            return access
        if refresh is None:  # stored but unreadable (the deployment's secret changed)
            raise NotFound("this user has no working Google connection")
        tokens = self.client.refresh(refresh, now=now)
        with self.factory() as session, session.begin():
            conn = connection_for(session, user_id)
            if conn is not None:
                self._store(conn, tokens, now)
        return tokens.access_token

    def _store(self, conn: GoogleConnection, tokens: GoogleTokens, now: datetime) -> None:
        conn.access_token_enc = self.box.encrypt(tokens.access_token)
        if tokens.refresh_token:
            conn.refresh_token_enc = self.box.encrypt(tokens.refresh_token)
        conn.expires_at = tokens.expires_at
        conn.scope = tokens.scope
        conn.updated_at = now


def link_member_calendar(session: Session, calendar: Calendar, user_id: str, google_calendar_id: str | None,
                         *, choices: list[GoogleCalendar] | None, now: datetime) -> CalendarMember:
    """Point a member at one of their Google calendars (one of ``choices``, fetched from Google), or unlink.
    A new link gets a sync row due now, so Google's busy times block slots from the first tick."""
    member = next((m for m in calendar.members if m.user_id == user_id), None)
    if member is None:
        raise NotFound(f"user {user_id!r} is not a member of this calendar")
    if google_calendar_id is not None:
        if connection_for(session, user_id) is None:
            raise Conflict("connect Google first", fields={"google_calendar_id": ["the user has not connected Google"]})
        if choices is not None and google_calendar_id not in {c.id for c in choices}:
            raise ValidationError.single("google_calendar_id", "not one of this user's writable Google calendars")
        exists = session.scalar(select(GoogleCalendarSync).where(
            GoogleCalendarSync.user_id == user_id, GoogleCalendarSync.google_calendar_id == google_calendar_id))
        if exists is None:
            session.add(GoogleCalendarSync(user_id=user_id, google_calendar_id=google_calendar_id, next_sync_at=now,
                                           attempts=0, updated_at=now))
    member.google_calendar_id = google_calendar_id
    session.flush()
    return member
