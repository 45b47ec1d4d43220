"""Users' own Zoom accounts: connecting (OAuth authorization code with state and PKCE), the rule that one
Zoom account belongs to one user ID, disconnecting, Zoom's ``app_deauthorized``, broken connections, the
daily-budget note to the host, and where meeting links come from (a user's default meeting location, a
calendar member's).

Provider calls never run inside a database transaction: each operation reads or claims what it needs,
commits, calls Zoom, then records the outcome in a second transaction. Tokens are stored encrypted with
:class:`automations.store.secrets_box.SecretsBox` and are never logged.

Connection ``status``: ``active``; ``broken`` (Zoom refused the credential: the user must reconnect);
``disconnecting`` (the user disconnected and asked Punctual to delete the meetings it created first: the
tokens are kept only for those deletions, then revoked and removed by :meth:`finish_disconnects`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from automations.booking import meetings
from automations.clock import ensure_utc
from automations.errors import BadRequest, Conflict, Forbidden, ValidationError
from automations.store.db import is_postgres, rowcount
from automations.store.models import (
    Calendar,
    CalendarMember,
    Meeting,
    Notification,
    OAuthState,
    User,
    ZoomConnection,
)
from automations.store.oauth import (
    ACTIVE,
    OAuthConnections,
    claim_state,
    issue_state,
    mark_connection_broken,
)
from automations.store.secrets_box import SecretsBox
from automations.store.states import MeetingStatus
from providers.zoom_client import (
    ZoomClient,
    ZoomError,
    ZoomInvalidGrant,
)

log = logging.getLogger(__name__)

PROVIDER = "zoom"
ZOOM = meetings.ZOOM
DISCONNECTING = "disconnecting"
DELETING = "deleting"
#: Zoom's documented limit: meeting create/update/delete requests per user per UTC day (contract §1.7).
DAILY_BUDGET = 100
#: How long a connect link stays usable (Zoom's own code lives 5 minutes once the user approves).
STATE_TTL = timedelta(minutes=10)
MAX_LOCATION = 1000

BUDGET_NOTE_TITLE = "Zoom daily limit reached"
BROKEN_NOTE_TITLE = "Reconnect your Zoom account"
DEAUTHORIZED_NOTE_TITLE = "Zoom was disconnected"


class ZoomNotConfigured(Conflict):
    code = "zoom_not_configured"


class ZoomAuthorizationFailed(BadRequest):
    """The OAuth round trip cannot complete: unknown, used or expired state, a refused code, the user said no."""

    code = "zoom_authorization_failed"


class ZoomAccountInUse(Conflict):
    """This Zoom account is already tied to another user ID."""

    code = "zoom_account_in_use"


@dataclass(frozen=True)
class Connected:
    user_id: str
    user_name: str
    zoom_email: str
    reconnected: bool


@dataclass(frozen=True)
class Disconnected:
    user_id: str
    status: str  # not_connected | disconnected | disconnecting
    meetings_to_delete: int
    message: str


# -- reading -------------------------------------------------------------------------------------------


def connection_for(session: Session, user_id: str, *, lock: bool = False) -> ZoomConnection | None:
    query = select(ZoomConnection).where(ZoomConnection.user_id == user_id)
    if lock and is_postgres(session):
        query = query.with_for_update()
    return session.scalar(query)


def is_connected(session: Session, user_id: str) -> bool:
    conn = connection_for(session, user_id)
    return conn is not None and conn.status == ACTIVE and bool(conn.access_token_enc)


def utc_day(now: datetime) -> str:
    """The UTC calendar day of ``now`` (Zoom's daily limit resets at 00:00 UTC, not in local time)."""
    return ensure_utc(now).date().isoformat()


def budget_used_today(conn: ZoomConnection, now: datetime) -> int:
    return conn.budget_used if conn.budget_day == utc_day(now) else 0


# -- connect -------------------------------------------------------------------------------------------


class ZoomConnections(OAuthConnections):
    """Connect, disconnect and deauthorize, over one :class:`ZoomClient` and one :class:`SecretsBox`."""

    provider_name = "Zoom"
    provider_error = ZoomError
    client: ZoomClient

    def __init__(self, factory: sessionmaker[Session], client: ZoomClient, box: SecretsBox, *,
                 state_ttl: timedelta = STATE_TTL) -> None:
        super().__init__(factory, client, box)
        self.state_ttl = state_ttl

    def start(self, user_id: str, *, now: datetime) -> tuple[str, datetime]:
        """A Zoom authorization URL for this user, and when it stops working. The state is random and
        single-use; the PKCE verifier is kept encrypted with it (the client secret is sent too)."""
        with self.factory() as session, session.begin():
            if session.get(User, user_id) is None:
                raise BadRequest(f"no user {user_id!r}")
            state, challenge, expires_at = issue_state(session, self.box, provider=PROVIDER, user_id=user_id,
                                                       now=now, ttl=self.state_ttl)
        return self.client.authorize_url(state, challenge), expires_at

    def fail(self, state: str | None, *, now: datetime) -> None:
        """The user declined at Zoom (``?error=access_denied``): the state is spent."""
        if not state:
            return
        with self.factory() as session, session.begin():
            row = session.get(OAuthState, state)
            if row is not None and row.provider == PROVIDER:
                session.delete(row)

    def complete(self, state: str | None, code: str | None, *, now: datetime) -> Connected:
        """Finish the OAuth redirect: check the state once, trade the code, ask Zoom who this is, apply the
        one-account rule and store the tokens encrypted."""
        if not state or not code:
            raise ZoomAuthorizationFailed("The Zoom redirect is missing its code or state. Start again from your profile.")
        with self.factory() as session, session.begin():
            claimed = claim_state(session, self.box, provider=PROVIDER, state=state, now=now)
        if claimed.problem == "unknown":
            raise ZoomAuthorizationFailed(
                "This Zoom connection link is not valid (it was already used or never issued). "
                "Start again from your profile.")
        if claimed.problem == "expired":
            raise ZoomAuthorizationFailed("This Zoom connection link has expired. Start again from your profile.")
        if claimed.problem:
            raise ZoomAuthorizationFailed("This Zoom connection link can no longer be read. Start again.")
        user_id, verifier = claimed.user_id, claimed.verifier

        try:
            tokens = self.client.exchange_code(code, verifier, now=now)
        except ZoomInvalidGrant:
            raise ZoomAuthorizationFailed(
                "Zoom refused the authorization code: it was already used or has expired. "
                "Start again from your profile.") from None
        except ZoomError as exc:
            raise ZoomAuthorizationFailed(f"Zoom could not complete the connection ({exc.message}). Try again.") from None
        try:
            zoom_user = self.client.me(tokens.access_token)
        except ZoomError as exc:
            raise ZoomAuthorizationFailed(f"Zoom did not say which account this is ({exc.message}). Try again.") from None

        revoke_old: str | None = None
        try:
            with self.factory() as session, session.begin():
                user = session.get(User, user_id)
                if user is None:
                    raise ZoomAuthorizationFailed("The user this link was made for no longer exists.")
                holder = session.scalar(select(ZoomConnection).where(
                    ZoomConnection.zoom_user_id == zoom_user.id, ZoomConnection.user_id != user.id))
                if holder is not None:
                    # Not revoked: at Zoom, revoking may end the app's access for that Zoom user, which
                    # would break the rightful holder's connection. The tokens are simply not kept.
                    raise ZoomAccountInUse(_in_use_message(session, zoom_user.email, holder, user))
                conn = connection_for(session, user.id, lock=True)
                reconnected = conn is not None
                if conn is None:
                    conn = ZoomConnection(location_id=user.location_id, user_id=user.id, created_at=now,
                                          budget_used=0)
                    session.add(conn)
                elif conn.zoom_user_id != zoom_user.id:
                    # The user switched Zoom accounts: the old grant goes, the day's count starts over.
                    revoke_old = self._plain(conn.access_token_enc)
                    conn.budget_day, conn.budget_used = None, 0
                conn.zoom_user_id = zoom_user.id
                conn.zoom_account_id = zoom_user.account_id
                conn.email = zoom_user.email or None
                conn.access_token_enc = self.box.encrypt(tokens.access_token)
                conn.refresh_token_enc = self.box.encrypt(tokens.refresh_token)
                conn.expires_at = tokens.expires_at
                conn.scope = tokens.scope
                conn.status, conn.status_reason = ACTIVE, None
                conn.refresh_owner = conn.refresh_expires_at = None
                conn.updated_at = now
                session.flush()
                result = Connected(user.id, user.name, zoom_user.email, reconnected)
        except IntegrityError:
            # Two users finished connecting the same Zoom account at the same moment: the unique index
            # on the Zoom user id let one through.
            raise ZoomAccountInUse(
                f"This Zoom account ({zoom_user.email}) was just connected to another user. A Zoom account "
                "can be connected to only one user ID.") from None
        if revoke_old:
            self._revoke(revoke_old)
        return result

    # -- disconnect --------------------------------------------------------------------------------

    def disconnect(self, user_id: str, *, delete_future_meetings: bool, now: datetime) -> Disconnected:
        """Revoke and delete the user's tokens. With ``delete_future_meetings``, the meetings Punctual made in
        Zoom for appointments still ahead are deleted first (by the meeting job, within the daily budget);
        the tokens are revoked and removed as soon as that is done (:meth:`finish_disconnects`)."""
        with self.factory() as session, session.begin():
            conn = connection_for(session, user_id, lock=True)
            if conn is None:
                return Disconnected(user_id, "not_connected", 0, "Zoom was not connected.")
            usable = conn.status in (ACTIVE, DISCONNECTING) and bool(conn.access_token_enc)
            count = mark_future_meetings_for_deletion(session, user_id, now) if delete_future_meetings and usable else 0
            if count:
                conn.status = DISCONNECTING
                conn.status_reason = f"disconnect requested: deleting {count} meeting(s) in Zoom first"
                conn.updated_at = now
                return Disconnected(
                    user_id, DISCONNECTING, count,
                    f"Deleting {count} Zoom meeting(s) Punctual created for upcoming appointments; the Zoom "
                    "tokens are revoked and removed as soon as that is done.")
            token = self._plain(conn.access_token_enc) or self._plain(conn.refresh_token_enc)
            session.delete(conn)
        if token:
            self._revoke(token)
        note = ""
        if delete_future_meetings and not usable:
            note = " The connection was not working, so meetings already in Zoom could not be deleted."
        return Disconnected(user_id, "disconnected", 0, "Zoom disconnected: tokens revoked and removed." + note)

    def finish_disconnects(self, now: datetime) -> int:
        """Complete disconnects whose meeting deletions are done: revoke, then remove the tokens."""
        tokens: list[str] = []
        with self.factory() as session, session.begin():
            query = select(ZoomConnection).where(ZoomConnection.status == DISCONNECTING)
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)  # one worker finishes each
            waiting = session.scalars(query).all()
            for conn in waiting:
                left = session.scalar(select(func.count()).select_from(Meeting).where(
                    Meeting.host_user_id == conn.user_id, Meeting.status == DELETING,
                    Meeting.provider == PROVIDER))
                if left:
                    continue
                token = self._plain(conn.access_token_enc) or self._plain(conn.refresh_token_enc)
                if token:
                    tokens.append(token)
                session.delete(conn)
        for token in tokens:
            self._revoke(token)
        return len(tokens)

    def deauthorize(self, zoom_user_id: str, account_id: str | None, *, now: datetime) -> bool:
        """Zoom's ``app_deauthorized``: remove the stored tokens of that Zoom user (idempotent)."""
        with self.factory() as session, session.begin():
            conn = session.scalar(select(ZoomConnection).where(ZoomConnection.zoom_user_id == zoom_user_id))
            if conn is None:
                return False
            if account_id and conn.zoom_account_id and conn.zoom_account_id != account_id:
                log.warning("app_deauthorized for Zoom user %s names another account; ignored", zoom_user_id)
                return False
            session.add(Notification(
                location_id=conn.location_id, user_id=conn.user_id, created_at=now, title=DEAUTHORIZED_NOTE_TITLE,
                body=("Punctual was removed from your Zoom account, so its Zoom tokens were deleted. New bookings "
                      "use your calendars' fallback location until you connect Zoom again from your profile. "
                      "Meetings already in Zoom stay there."),
            ))
            session.delete(conn)
        return True

    # -- helpers -----------------------------------------------------------------------------------


def _in_use_message(session: Session, zoom_email: str, holder: ZoomConnection, user: User) -> str:
    other = session.get(User, holder.user_id)
    if other is not None and other.location_id == user.location_id:
        who = f"another user ({other.name or other.email or other.id})"
    else:
        who = "a user in another account"
    account = f" ({zoom_email})" if zoom_email else ""
    return (f"This Zoom account{account} is already connected to {who}. A Zoom account can be connected to "
            "only one user: the tie is to the user ID, not the email address, so it is refused even when the "
            "email is the same. Disconnect Zoom from that user first, then connect it here.")


# -- the meeting job's side: broken connections, budgets ------------------------------------------------


def mark_future_meetings_for_deletion(session: Session, user_id: str, now: datetime) -> int:
    """Mark the Zoom meetings this user hosts for appointments still ahead for deletion; returns how many
    need a call to Zoom (meetings never created there are simply dropped). Their appointments keep
    pointing at them, which renders as a failed link: the workflow's fallback policy applies."""
    rows = session.scalars(select(Meeting).where(
        Meeting.host_user_id == user_id, Meeting.provider == PROVIDER, Meeting.start_at > now,
        Meeting.status.in_((MeetingStatus.PENDING, MeetingStatus.READY)),
    )).all()
    count = 0
    for m in rows:
        if m.external_id:
            m.status, m.next_attempt_at = DELETING, now
            count += 1
        else:
            m.status = MeetingStatus.DELETED
        m.updated_at = now
    return count


def mark_broken(session: Session, user_id: str, reason: str, now: datetime) -> bool:
    """Zoom refused this user's credential for good: mark it broken, drop the dead tokens, alert the user
    (once: only when it was active). Returns whether it changed."""
    conn = connection_for(session, user_id, lock=True)
    changed = mark_connection_broken(
        session, conn, reason, now, title=BROKEN_NOTE_TITLE,
        body=("Zoom no longer accepts Punctual's access to your Zoom account, so new meeting links cannot be "
              "made. Reminders use your calendars' fallback location (or wait, per each workflow's policy) "
              "until you reconnect Zoom from your profile."))
    if changed and conn is not None:
        conn.refresh_owner = conn.refresh_expires_at = None  # no refresh lease on a dead credential
    return changed


def note_daily_limit(session: Session, user_id: str, location_id: str, now: datetime, retry_at: datetime) -> bool:
    """Tell the host, once per UTC day, that Zoom work waits for the daily limit to reset."""
    day_start = ensure_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)
    exists = session.scalar(select(func.count()).select_from(Notification).where(
        Notification.user_id == user_id, Notification.title == BUDGET_NOTE_TITLE,
        Notification.created_at >= day_start))
    if exists:
        return False
    session.add(Notification(
        location_id=location_id, user_id=user_id, created_at=now, title=BUDGET_NOTE_TITLE,
        body=(f"Zoom allows {DAILY_BUDGET} meeting create/update/delete requests per user per UTC day, and "
              f"today's are used up. Punctual will make the remaining meeting changes at "
              f"{retry_at.strftime('%Y-%m-%d %H:%M')} UTC. Messages that need a link wait for it or use the "
              "calendar's fallback location, per each workflow's policy."),
    ))
    return True


def reset_budgets(session: Session, now: datetime) -> int:
    """At 00:00 UTC: every connection's count starts the new day at zero."""
    today = utc_day(now)
    return rowcount(session.execute(
        update(ZoomConnection)
        .where(ZoomConnection.budget_day.is_not(None), ZoomConnection.budget_day != today)
        .values(budget_day=today, budget_used=0)
        .execution_options(synchronize_session=False)
    ))


# -- where links come from ------------------------------------------------------------------------------


def normalize_location(value: str | None, path: str = "location") -> str | None:
    """``zoom`` (any case), a static link or text, or None (empty counts as none)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError.single(path, "must be a string or null")
    text = value.strip()
    if not text:
        return None
    if text.lower() == ZOOM:
        return ZOOM
    if len(text) > MAX_LOCATION:
        raise ValidationError.single(path, f"must be at most {MAX_LOCATION} characters")
    return text


def _check_zoom_allowed(session: Session, user: User, acting_user: User | None, path: str) -> None:
    """A user may pick Zoom for themselves (they are asked to connect); anyone else — an admin, or the API
    acting for the location — only once that user has connected their own Zoom account."""
    if acting_user is not None and acting_user.id == user.id:
        return
    if acting_user is not None and acting_user.role != "admin":
        raise Forbidden("only an admin can change another user's meeting location")
    if not is_connected(session, user.id):
        raise Conflict(
            f"{user.name or user.email or user.id} has not connected a Zoom account. Each user connects their "
            "own Zoom account from their profile; once they have, Zoom can be chosen for them.",
            fields={path: ["user has no active Zoom connection"]},
        )


def set_default_location(session: Session, user: User, value: str | None, *, apply_to_calendars: bool,
                         now: datetime, acting_user: User | None = None) -> int:
    """Set the user's default meeting location; with ``apply_to_calendars``, also every calendar they are a
    member of. Returns how many calendar memberships changed. Affects bookings from now on."""
    location = normalize_location(value)
    if location == ZOOM:
        _check_zoom_allowed(session, user, acting_user, "location")
    user.default_meeting_location = location
    changed = 0
    if apply_to_calendars:
        for member in session.scalars(select(CalendarMember).where(CalendarMember.user_id == user.id)):
            if member.meeting_location != location:
                member.meeting_location = location
                changed += 1
    return changed


def set_member_location(session: Session, calendar: Calendar, user: User, value: str | None, *, now: datetime,
                        acting_user: User | None = None) -> CalendarMember:
    """Set one calendar member's meeting location (``zoom``, text, or None = the user's default, then the
    calendar's)."""
    member = session.scalar(select(CalendarMember).where(
        CalendarMember.calendar_id == calendar.id, CalendarMember.user_id == user.id))
    if member is None:
        raise ValidationError.single("user_id", "user is not a member of this calendar")
    location = normalize_location(value)
    if location == ZOOM:
        _check_zoom_allowed(session, user, acting_user, "location")
    member.meeting_location = location
    return member
