"""Delivering the outbox: claim due messages under a lease, render them from current data, send them
through the channel's provider outside any transaction, one at a time per lane, recording each outcome before
the lane's next send.

Before a message is rendered (when it is claimed) and again just before it is handed to its provider, delivery
checks that it is still warranted (:func:`unwarranted`): a message about an appointment is withdrawn, with the
reason logged, once that appointment was cancelled, marked invalid or no-show, deleted, or moved away from the
time the message was about; a text or email to a contact who opted out of that channel is withdrawn too. This
covers every path to a send: first attempts, messages held by quiet hours or for a meeting link, and retries.

An outbound send outside the workflow's time window waits for its next opening
(``automations.rendering.time_window``). A message whose text needs ``appointment.meeting_location`` while the
meeting is still being created is held (bounded by ``hold_until``) and released the moment the link resolves;
after that the workflow's policy applies (send with the calendar's fallback text, or hold and alert the host).
No message goes out with an empty link.

After the provider answers: success records the provider's id and status; a transient failure
(timeout, 5xx, 429 / Twilio 20429) retries with capped, jittered exponential backoff (``RetryPolicy``,
honouring ``Retry-After``); a permanent one (invalid number, opted out, other 4xx) or the last
attempt fails the message with its reason and alerts the location's admins (``automations.outbox.alerts``).
Each failed attempt and each give-up is logged once at WARNING with the message id and the reason.
Twilio's 21610 also opts the contact out. How each channel renders and sends is in
``automations.outbox.channels``.

Nothing twice: a batch is sent in two lanes side by side (its emails, and the rest; ``channels.lanes``), each
with one send in flight. The lease is checked and extended (a conditional UPDATE on owner and lease, counting
the rows it hit) just before each send, and each outcome is written by a conditional UPDATE on the same owner
before the lane's next send (a success in the same transaction that clears that send; a failure, and a lane's
last success, at once), so a slow batch keeps its claim and a worker that lost its claim sends nothing more and
overwrites nothing. A worker killed mid-batch leaves at most the one message per lane that was on the wire in
doubt: it stays ``sending`` until its lease runs out, then it is sent again under the same id (for Twilio the
status callback, which names the outbox row, usually reconciles it first; an email carries the same
Message-ID and a webhook the same Idempotency-Key, so receivers can drop the copy).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, select, update
from sqlalchemy.orm import Session, sessionmaker

from automations.booking import booking_links, meetings
from automations.clock import Clock, SystemClock
from automations.errors import ProviderError
from automations.outbox import alerts, channels, consent
from automations.rendering import render_context, time_window
from automations.retry import RetryPolicy
from automations.runs import enrollments
from automations.store.db import claimable, load_by_id, rowcount, table_of
from automations.store.models import (
    Appointment,
    Calendar,
    Contact,
    Enrollment,
    Location,
    Meeting,
    Message,
    Notification,
    User,
)
from automations.store.states import ENDING_STATUSES, MessageStatus
from providers.bag import Providers
from providers.base import SendResult
from providers.twilio_common import classify_code

__all__ = ["Delivery", "unwarranted", "write_logs"]

log = logging.getLogger(__name__)
HOLD_RECHECK = timedelta(minutes=15)
_T = table_of(Message)
# The per-send statements, built once (they run for every message; building them is most of their cost).
_MINE = (_T.c.id == bindparam("b_id"), _T.c.lease_owner == bindparam("b_owner"), _T.c.status == MessageStatus.SENDING)
_A, _C = table_of(Appointment), table_of(Contact)
# The lease extended and, in the same statement, what ``unwarranted`` needs: the appointment's status and start
# (NULL: deleted) and the contact's do-not-disturb flags. One round trip per send instead of three.
_EXTEND = (update(_T).where(_T.c.id == bindparam("b_id"), _T.c.lease_owner == bindparam("b_owner"),
                            _T.c.status.in_((MessageStatus.PENDING, MessageStatus.SENDING)),
                            _T.c.lease_expires_at > bindparam("b_now"))
           .values(status=MessageStatus.SENDING, lease_expires_at=bindparam("b_until"))
           .returning(select(_A.c.status).where(_A.c.id == _T.c.appointment_id).scalar_subquery().label("status"),
                      select(_A.c.start_at).where(_A.c.id == _T.c.appointment_id).scalar_subquery().label("start_at"),
                      select(_C.c.sms_dnd).where(_C.c.id == _T.c.contact_id).scalar_subquery().label("sms_dnd"),
                      select(_C.c.email_dnd).where(_C.c.id == _T.c.contact_id).scalar_subquery().label("email_dnd")))
_SENT = update(_T).where(*_MINE).values(
    status=bindparam("b_status"), provider=bindparam("b_provider"), provider_id=bindparam("b_pid"),
    sent_at=bindparam("b_at"), provider_detail=bindparam("b_detail"), status_reason=None, lease_owner=None,
    lease_expires_at=None)
#: How many sends one worker has in flight at once (one per lane, see channels.lanes): the most a kill can repeat.
IN_FLIGHT_PER_WORKER = channels.LANES


def due_where(now: datetime | ColumnElement) -> tuple[ColumnElement[bool], ...]:
    """The messages due for delivery at ``now`` (lease aside); the claim and the worker's due probe share it."""
    return Message.status.in_((MessageStatus.PENDING, MessageStatus.SENDING)), Message.due_at <= now


@dataclass
class _Notes:
    """Enrollment-log lines about deliveries, written after the batch's own transactions (see _write_logs)."""

    lines: list[tuple[str, str, str, dict]] = field(default_factory=list)  # (enrollment_id, outcome, reason, detail)

    def add(self, m: Message, outcome: str, reason: str, **detail) -> None:
        if m.enrollment_id:
            self.lines.append((m.enrollment_id, outcome, reason, {"message_id": m.id, "step_id": m.step_id, **detail}))


def write_sent(conn: Connection, m: Message, outcome: SendResult, owner: str, at: datetime) -> int:
    """Record a provider's acceptance of ``m`` if ``owner`` still holds it; the rows hit (0 or 1)."""
    detail = {k: v for k, v in outcome.detail.items() if k != "message_id"} or None
    return conn.execute(_SENT, {"b_id": m.id, "b_owner": owner, "b_status": outcome.status,
                                "b_provider": outcome.provider, "b_pid": outcome.provider_id, "b_at": at,
                                "b_detail": detail}).rowcount


class _Answered:
    """A lane's latest provider acceptance, not written yet: it goes into the transaction that clears the lane's
    next send (or, for the lane's last one, one of its own). At most one per lane, so a kill still leaves at
    most one message per lane in doubt."""

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts
        self.waiting: tuple[Message, SendResult, datetime] | None = None

    def hold(self, m: Message, outcome: SendResult, at: datetime) -> None:
        self.waiting = (m, outcome, at)

    def write(self, conn: Connection, owner: str) -> None:
        if self.waiting is None:
            return
        m, outcome, at = self.waiting
        self.waiting = None
        if write_sent(conn, m, outcome, owner, at) == 1:
            self.counts["sent"] += 1
        else:  # a receipt got there first (it names the row), or our lease ran out and someone took it over
            log.info("message %s: outcome not recorded, a receipt or another worker got there first", m.id)
            self.counts["lost"] += 1


class _Loaded:
    """Everything a batch needs to render, fetched with one query per table."""

    def __init__(self, session: Session, messages: list[Message]) -> None:
        self.appointments = load_by_id(session, Appointment, (m.appointment_id for m in messages))
        self.contacts = load_by_id(session, Contact, [m.contact_id for m in messages]
                                   + [a.contact_id for a in self.appointments.values()])
        users = [m.user_id for m in messages] + [a.assigned_user_id for a in self.appointments.values()]
        self.users = load_by_id(session, User, users)
        self.calendars = load_by_id(session, Calendar, (a.calendar_id for a in self.appointments.values()))
        self.meetings = load_by_id(session, Meeting, (a.meeting_id for a in self.appointments.values()))
        self.locations = load_by_id(session, Location, (m.location_id for m in messages))
        self.contexts: dict[tuple, dict] = {}


def unwarranted(m: Message, appt: Appointment | None, contact: Contact | None) -> str | None:
    """Why ``m`` must not be sent any more, or None. ``appt`` and ``contact`` are the current rows (ORM objects,
    or Core rows with ``status``, ``start_at`` and ``sms_dnd``, ``email_dnd``)."""
    if m.appointment_id:
        if appt is None:
            return "the appointment was deleted"
        if appt.status in ENDING_STATUSES and appt.status != m.about_status:
            return f"the appointment is {appt.status}"
        if m.about_start_at is not None and appt.start_at != m.about_start_at:
            return (f"the appointment moved from {m.about_start_at.isoformat()} to {appt.start_at.isoformat()}")
    if m.audience == "contact":
        return consent.opted_out(contact, m.channel)
    return None



def message_context(m: Message, appt: Appointment | None, loaded: _Loaded, link: str, now: datetime,
                    providers: Providers) -> dict:
    """The merge-field context ``m`` renders from: the recipient's time zone, the meeting location ``link``."""
    location = loaded.locations[m.location_id]
    contact = loaded.contacts.get(m.contact_id) or (loaded.contacts.get(appt.contact_id) if appt else None)
    assigned = loaded.users.get(appt.assigned_user_id) if appt else None
    if m.audience == "contact":
        tz = (contact.timezone if contact else None) or (appt.timezone if appt else None) or location.timezone
    else:
        recipient = loaded.users.get(m.user_id)
        tz = (recipient.timezone if recipient else None) or location.timezone
    return render_context.build_context(
        location=location, contact=contact, appointment=appt,
        calendar=loaded.calendars.get(appt.calendar_id) if appt else None,
        assigned_user=assigned, recipient_tz=tz or "UTC", now=now, meeting_location=link,
        links=booking_links.links(providers.public_url, providers.secret_key, appt.id if appt else None),
    )


def render_detached(session: Session, m: Message, now: datetime, providers: Providers) -> tuple[object, str | None]:
    """Render ``m`` exactly as delivery would, but without claiming, holding or writing anything (previews):
    its provider envelope, and the meeting-location text it got (None while a meeting link is not ready)."""
    loaded = _Loaded(session, [m])
    appt = loaded.appointments.get(m.appointment_id)
    link = None
    if appt is not None:
        link = meetings.current_location(appt, loaded.meetings.get(appt.meeting_id), loaded.calendars.get(appt.calendar_id))
    context = message_context(m, appt, loaded, link or "", now, providers)
    return channels.render(m, context, loaded.locations[m.location_id], providers), link

class Delivery:
    def __init__(self, factory: sessionmaker[Session], providers: Providers, *, owner: str,
                 lease_seconds: int = 120, retry: RetryPolicy | None = None, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.factory = factory
        self.engine = factory.kw["bind"]
        self.providers = providers
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.retry = retry or RetryPolicy()

    def run_batch(self, now: datetime, limit: int = 500) -> int:
        """Deliver up to ``limit`` due messages. Returns how many were claimed."""
        notes = _Notes()
        started = time.monotonic()
        with self.factory() as session, session.begin():
            claimed = self._claim(session, now, limit)
            if not claimed:
                return 0
            # The leases and what preparing sets (attempts, rendered text, holds) go out in one UPDATE per
            # message at the commit, not one for the claim and another for the rest: nothing read while
            # preparing depends on the claim being written first.
            with session.no_autoflush:
                to_send = self._prepare(session, claimed, now, notes)
        first, *others = channels.lanes(to_send) or [[]]
        if others:
            # The other lane runs on a thread of its own while this one runs here; both end with the batch.
            with ThreadPoolExecutor(max_workers=len(others), thread_name_prefix="punctual-lane") as pool:
                side = [pool.submit(self._send_lane, lane, notes) for lane in others]
                counts = self._send_lane(first, notes)
                for future in side:
                    counts += future.result()
        else:
            counts = self._send_lane(first, notes)
        self._write_logs(notes, now)
        log.info("delivery batch: %d claimed, %d handed to providers, %d sent, %d retrying, %d failed, "
                 "%d not recorded (claim lost) in %.3fs", len(claimed), len(to_send), counts["sent"],
                 counts["retrying"], counts["failed"], counts["lost"], time.monotonic() - started)
        return len(claimed)

    def _send_lane(self, lane: list[tuple[Message, object]], notes: _Notes) -> Counter[str]:
        """Send one lane. A success is written in the transaction that clears the lane's next send (one
        transaction per message instead of two), so it is still on disk before anything else goes out;
        the lane's last success, and every failure, are written at once."""
        counts: Counter[str] = Counter()
        answered = _Answered(counts)
        # One connection for the lane, a transaction per send on it (not a pool checkout per send).
        with self.engine.connect() as conn:
            try:
                for m, outcome in channels.send_each(lane, self.providers,
                                                     lambda m: self._proceed(conn, m, notes, answered)):
                    if isinstance(outcome, SendResult):
                        answered.hold(m, outcome, self.clock.now())
                    else:
                        counts[self._record_failure(m, outcome, notes)] += 1
            finally:
                if answered.waiting is not None:
                    # (A connection that broke mid-lane reconnects here: its failed transaction is rolled back.)
                    with conn.begin():
                        answered.write(conn, self.owner)
        return counts

    # -- claim and prepare (one transaction) -----------------------------------------------------------

    def _claim(self, session: Session, now: datetime, limit: int) -> list[Message]:
        # A message left in ``sending`` by a worker that died is taken up again once its lease
        # has run out (unless a receipt reconciled it meanwhile); providers see the same message id
        # and idempotency key.
        query = claimable(session, Message, *due_where(now), order_by=[Message.due_at, Message.id], now=now, limit=limit)
        messages = list(session.scalars(query))
        for m in messages:
            m.lease_owner = self.owner
            m.lease_expires_at = now + self.lease
        return messages

    def _prepare(self, session: Session, messages: list[Message], now: datetime,
                 notes: _Notes) -> list[tuple[Message, object]]:
        """Render each message; withdraw unwarranted ones, hold those outside the time window or waiting on a
        link; write in-app ones directly."""
        loaded = _Loaded(session, messages)
        out: list[tuple[Message, object]] = []
        for m in messages:
            appt = loaded.appointments.get(m.appointment_id)
            reason = unwarranted(m, appt, loaded.contacts.get(m.contact_id))
            if reason:
                self._withdraw(m, reason, notes)
                continue
            opens = time_window.opening(m.template.get("time_window"), now) if m.outbound else now
            if opens > now:
                self._hold(m, opens, f"waiting for the workflow's time window (opens {opens.isoformat()})")
                continue
            link = self._meeting_location(session, m, appt, loaded, now)
            if link is None:
                continue  # held
            location = loaded.locations[m.location_id]
            in_doubt = m.status == MessageStatus.SENDING
            m.attempts += 1
            try:
                envelope = channels.render(m, self._context(m, appt, loaded, link, now), location, self.providers)
            except ProviderError as exc:
                self._apply_failure(session, m, exc, now, notes)
                continue
            if m.channel == "in_app":
                session.add(Notification(location_id=m.location_id, user_id=m.user_id, message_id=m.id,
                                         title=m.subject or (m.body or "")[:120], body=m.body, created_at=now))
                m.status, m.provider, m.provider_id, m.sent_at = MessageStatus.SENT, "in_app", m.id, now
                m.status_reason = m.lease_owner = m.lease_expires_at = None
                continue
            if in_doubt:
                # The last attempt's outcome is unknown (its worker died after handing it over) and no receipt
                # has reconciled it: send again, under the same id (see the module docstring).
                m.resent_in_doubt = (m.resent_in_doubt or 0) + 1
                log.warning("message %s: outcome of its last attempt unknown (worker gone); sending again", m.id)
            # Still ``pending`` (under our lease) until the moment it is handed over: only a row that reached a
            # provider is ever ``sending``, so a ``sending`` row whose lease ran out is truly in doubt.
            out.append((m, envelope))
        return out

    def _withdraw(self, m: Message, why: str, notes: _Notes) -> None:
        m.status = MessageStatus.CANCELLED
        m.status_reason = f"withdrawn: {why}"
        m.lease_owner = m.lease_expires_at = None
        log.info("message %s withdrawn: %s", m.id, why)
        notes.add(m, "skipped", f"{m.channel} to {m.to_address} withdrawn: {why}")

    def _meeting_location(self, session: Session, m: Message, appt: Appointment | None, loaded: _Loaded,
                          now: datetime) -> str | None:
        """The text for ``appointment.meeting_location``, or None when the message must wait."""
        if appt is None:
            return ""
        meeting = loaded.meetings.get(appt.meeting_id)
        calendar = loaded.calendars.get(appt.calendar_id)
        state = meetings.link_state(meeting)
        if state in ("ready", "none"):
            return meetings.current_location(appt, meeting, calendar)
        if not m.needs_meeting_link:
            return ""
        fallback = meetings.fallback_text(calendar)
        policy = m.template.get("meeting_link_policy", "fallback")
        if state == "pending" and m.hold_until is not None and now < m.hold_until:  # not waited out yet
            self._hold(m, m.hold_until, "waiting for the meeting link")
            return None
        if policy == "fallback" and fallback:
            return fallback
        # No link and nothing to fall back on: hold, and tell the host once.
        if not m.status_reason or "host alerted" not in m.status_reason:
            self._alert_host(session, m, appt, now, state)
        self._hold(m, now + HOLD_RECHECK, "meeting link unavailable: held, host alerted")
        return None

    def _hold(self, m: Message, until: datetime, reason: str) -> None:
        m.due_at = until
        m.status_reason = reason
        m.lease_owner = None
        m.lease_expires_at = None

    def _alert_host(self, session: Session, m: Message, appt: Appointment, now: datetime, state: str) -> None:
        if not appt.assigned_user_id:
            return
        what = "could not be created" if state == "failed" else "is still not ready"
        session.add(Notification(
            location_id=m.location_id, user_id=appt.assigned_user_id, created_at=now,
            title="A reminder is waiting for its meeting link",
            body=f"The meeting link for '{appt.title}' {what}; a {m.channel} to the contact is on hold.",
        ))

    def _context(self, m: Message, appt: Appointment | None, loaded: _Loaded, link: str, now: datetime) -> dict:
        # The SMS and the email of one reminder render from the same context: build it once.
        key = (m.location_id, m.audience, m.contact_id, m.user_id, m.appointment_id, link)
        cached = loaded.contexts.get(key)
        if cached is None:
            cached = loaded.contexts[key] = self._build_context(m, appt, loaded, link, now)
        return cached

    def _build_context(self, m: Message, appt: Appointment | None, loaded: _Loaded, link: str, now: datetime) -> dict:
        return message_context(m, appt, loaded, link, now, self.providers)

    # -- just before each send ---------------------------------------------------------------------------

    def _proceed(self, conn: Connection, m: Message, notes: _Notes, answered: _Answered) -> bool:
        """Right before ``m`` goes to its provider: write the lane's previous answer, extend our lease on ``m``
        (only if we still hold it, counting the rows the conditional UPDATE hit) and check it is still
        warranted; withdraw it if not. Core statements on one connection: this runs once per send."""
        now = self.clock.now()
        with conn.begin():
            answered.write(conn, self.owner)
            held: Any = conn.execute(_EXTEND, {"b_id": m.id, "b_owner": self.owner, "b_now": now,
                                               "b_until": now + self.lease}).first()
            if held is None:
                log.info("message %s not sent by %s: withdrawn meanwhile, or its claim ran out and was taken over",
                         m.id, self.owner)
                return False
            # The row stands for both: ``status``/``start_at`` of the appointment, the contact's DND flags.
            appt = held if m.appointment_id and held.status is not None else None
            contact = held if m.contact_id and m.audience == "contact" else None
            why = unwarranted(m, appt, contact)
            if why:
                conn.execute(update(_T).where(*_MINE).values(
                    status=MessageStatus.CANCELLED, status_reason=f"withdrawn: {why}", lease_owner=None,
                    lease_expires_at=None), {"b_id": m.id, "b_owner": self.owner})
                log.info("message %s withdrawn just before sending: %s", m.id, why)
                notes.add(m, "skipped", f"{m.channel} to {m.to_address} withdrawn: {why}")
                return False
        return True

    # -- as soon as the provider answers -------------------------------------------------------------------

    def _record_failure(self, m: Message, exc: Exception, notes: _Notes) -> str:
        """Write a failed send's outcome at once (successes go with the lane's next send, see ``_Answered``);
        returns retrying | failed | lost."""
        now = self.clock.now()
        kind, values = self._failure_values(m, exc, now)
        with self.factory() as session, session.begin():
            hit = rowcount(session.execute(update(_T).where(*_MINE).values(**values),
                                           {"b_id": m.id, "b_owner": self.owner}))
            if hit and kind == "failed":
                self._after_failure(session, m, exc, values, now, notes)
        if hit != 1:
            # A receipt got there first (it names the row), or someone took it over after our lease ran out.
            log.info("message %s: outcome not recorded, a receipt or another worker got there first", m.id)
            return "lost"
        return kind

    def _failure_values(self, m: Message, exc: Exception, now: datetime) -> tuple[str, dict]:
        code = getattr(exc, "provider_code", None)
        retry_at = None
        if getattr(exc, "retryable", False):
            retry_at = self.retry.next_attempt(m.attempts, now, getattr(exc, "retry_after", None))
        if retry_at is None:
            retryable = getattr(exc, "retryable", False)
            reason = f"failed after {m.attempts} attempts: {exc}" if retryable else f"failed: {exc}"
            log.warning("message %s (%s to %s) gave up: %s", m.id, m.channel, m.to_address, reason)
            return "failed", dict(status=MessageStatus.FAILED, error_code=code, status_reason=reason,
                                  lease_owner=None, lease_expires_at=None)
        reason = (f"retrying at {retry_at.isoformat()} (attempt {m.attempts} of {self.retry.max_attempts} "
                  f"failed): {exc}")
        log.warning("message %s (%s) attempt %d failed, retrying at %s: %s", m.id, m.channel, m.attempts,
                    retry_at.isoformat(), exc)
        return "retrying", dict(status=MessageStatus.PENDING, error_code=code, due_at=retry_at, status_reason=reason,
                                lease_owner=None, lease_expires_at=None)

    def _apply_failure(self, session: Session, m: Message, exc: Exception, now: datetime, notes: _Notes) -> None:
        """A failure met while preparing (the row is loaded in ``session``): the same rules as after a send."""
        kind, values = self._failure_values(m, exc, now)
        for key, value in values.items():
            setattr(m, key, value)
        if kind == "failed":
            self._after_failure(session, m, exc, values, now, notes)

    def _after_failure(self, session: Session, m: Message, exc: Exception, values: dict, now: datetime,
                       notes: _Notes) -> None:
        """The message failed for good: log it on the enrollment, opt the contact out on 21610, tell the admins."""
        code, reason = values["error_code"], values["status_reason"]
        notes.add(m, "failed", f"{m.channel} to {m.to_address} {reason}", error_code=code)
        try:
            # In a savepoint: whatever goes wrong here must not stop the failure itself being recorded.
            with session.begin_nested():
                if classify_code(code) == "opted_out" and m.channel == "sms" and m.to_address:
                    withdrawn = consent.opt_out(session, m.to_address, now=now, reason=f"Twilio {code} on send")
                    log.info("%s opted out (Twilio %s): %d pending text(s) withdrawn", m.to_address, code, withdrawn)
                else:
                    alerts.notify_admins(session, m, reason, now)
        except Exception:
            log.exception("follow-up of failed message %s (opt-out or admin alert) failed", m.id)

    def _write_logs(self, notes: _Notes, now: datetime) -> None:
        """Delivery outcomes worth a line in the enrollment's log (skips, failures), in a transaction of their
        own: it locks nothing but the enrollments' keys, so it cannot deadlock with a worker advancing them.
        These lines carry no step id (they are about a message, not a step's run); detail names both."""
        if not notes.lines:
            return
        write_logs(self.factory, notes.lines, now)


def write_logs(factory: sessionmaker[Session], lines: list[tuple[str, str, str, dict]], now: datetime) -> None:
    try:
        with factory() as session, session.begin():
            for enrollment_id, outcome, reason, detail in lines:
                enrollment = session.get(Enrollment, enrollment_id)
                if enrollment is not None:
                    enrollments.log(session, enrollment, outcome=outcome, reason=reason, now=now, detail=detail)
    except Exception:  # the outbox row already holds the outcome; a lost log line must not undo a send
        log.exception("could not write %d delivery log line(s)", len(lines))
