"""Delivering the outbox: claim due messages under a lease, render them from current data, send
them through the channel's provider outside any transaction, record what happened.

Before a message is rendered: a text or email to a contact who has opted out of that channel is
skipped (withdrawn, with the reason), and an outbound send outside the workflow's time window waits
for its next opening (``automations.rendering.time_window``). A message whose text needs
``appointment.meeting_location`` while the meeting is still being created is held (bounded by
``hold_until``) and released the moment the link resolves; after that the workflow's policy applies
(send with the calendar's fallback text, or hold and alert the host). No message goes out with an
empty link.

After the provider answers: success records the provider's id and status; a transient failure
(timeout, 5xx, 429 / Twilio 20429) retries with capped, jittered exponential backoff (``RetryPolicy``,
honouring ``Retry-After``); a permanent one (invalid number, opted out, other 4xx) or the last
attempt fails the message with its reason and alerts the location's admins (``automations.outbox.alerts``).
Twilio's 21610 also opts the contact out. How each channel renders and sends is in
``automations.outbox.channels``.

The in-flight window: between the provider accepting a message and ``_record`` committing, a crash
leaves the row ``sending``; once its lease has run out another worker takes it up again. For Twilio
the status callback (which names the outbox row) usually reconciles it first (``automations.outbox.receipts``)
and nothing is resent; an email carries the same Message-ID on a resend and a webhook the same
Idempotency-Key, so receivers can drop the copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from automations.booking import booking_links, meetings
from automations.clock import Clock
from automations.errors import ProviderError
from automations.outbox import alerts, channels, inbound, receipts
from automations.outbox.channels import Senders
from automations.outbox.retry import RetryPolicy
from automations.rendering import render_context, time_window
from automations.runs import enrollments
from automations.store.db import is_postgres
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
from automations.store.states import MessageStatus
from providers.base import SendResult

__all__ = ["Delivery", "Senders", "cancel_for"]

log = logging.getLogger(__name__)
HOLD_RECHECK = timedelta(minutes=15)
OPTED_OUT_CODES = receipts.OPTED_OUT_CODES


@dataclass
class _Notes:
    """Enrollment-log lines about deliveries, written after the batch's own transactions (see _write_logs)."""

    lines: list[tuple[str, str, str, dict]] = field(default_factory=list)  # (enrollment_id, outcome, reason, detail)

    def add(self, m: Message, outcome: str, reason: str, **detail) -> None:
        if m.enrollment_id:
            self.lines.append((m.enrollment_id, outcome, reason, {"message_id": m.id, "step_id": m.step_id, **detail}))


class _Loaded:
    """Everything a batch needs to render, fetched with one query per table."""

    def __init__(self, session: Session, messages: list[Message]) -> None:
        def by_id(model, ids):
            ids = {i for i in ids if i}
            return {o.id: o for o in session.scalars(select(model).where(model.id.in_(ids)))} if ids else {}

        self.appointments = by_id(Appointment, (m.appointment_id for m in messages))
        self.contacts = by_id(Contact, [m.contact_id for m in messages] + [a.contact_id for a in self.appointments.values()])
        users = [m.user_id for m in messages] + [a.assigned_user_id for a in self.appointments.values()]
        self.users = by_id(User, users)
        self.calendars = by_id(Calendar, (a.calendar_id for a in self.appointments.values()))
        self.meetings = by_id(Meeting, (a.meeting_id for a in self.appointments.values()))
        self.locations = by_id(Location, (m.location_id for m in messages))
        self.contexts: dict[tuple, dict] = {}


class Delivery:
    def __init__(self, factory: sessionmaker[Session], senders: Senders, *, owner: str,
                 lease_seconds: int = 120, retry: RetryPolicy | None = None, clock: Clock | None = None) -> None:
        #: Read after sending, so ``sent_at`` is when the provider answered, not when the tick began.
        self.clock = clock
        self.factory = factory
        self.senders = senders
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.retry = retry or RetryPolicy()

    def run_batch(self, now: datetime, limit: int = 500) -> int:
        """Deliver up to ``limit`` due messages. Returns how many were claimed."""
        notes = _Notes()
        with self.factory() as session, session.begin():
            claimed = self._claim(session, now, limit)
            if not claimed:
                return 0
            to_send = self._prepare(session, claimed, now, notes)
        results = channels.send_all(to_send, self.senders)
        if results:
            done = self.clock.now() if self.clock else now
            with self.factory() as session, session.begin():
                self._record(session, results, done, notes)
        self._write_logs(notes, now)
        return len(claimed)

    def _claim(self, session: Session, now: datetime, limit: int) -> list[Message]:
        # A message left in ``sending`` by a worker that died is taken up again once its lease
        # has run out (unless a receipt reconciled it meanwhile); providers see the same message id
        # and idempotency key.
        query = (
            select(Message)
            .where(
                or_(
                    Message.status == MessageStatus.PENDING,
                    Message.status == MessageStatus.SENDING,
                ),
                Message.due_at <= now,
                or_(Message.lease_expires_at.is_(None), Message.lease_expires_at < now),
            )
            .order_by(Message.due_at, Message.id)
            .limit(limit)
        )
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        messages = list(session.scalars(query))
        for m in messages:
            m.lease_owner = self.owner
            m.lease_expires_at = now + self.lease
        return messages

    def _prepare(self, session: Session, messages: list[Message], now: datetime,
                 notes: _Notes) -> list[tuple[Message, object]]:
        """Render each message; skip opted-out ones, hold those outside the time window or waiting on a
        link; write in-app ones directly."""
        loaded = _Loaded(session, messages)
        out: list[tuple[Message, object]] = []
        for m in messages:
            skip = self._opted_out(m, loaded)
            if skip:
                m.status = MessageStatus.CANCELLED
                m.status_reason = f"skipped: {skip}"
                m.lease_owner = m.lease_expires_at = None
                notes.add(m, "skipped", f"{m.channel} to {m.to_address} skipped: {skip}")
                continue
            opens = time_window.opening(m.template.get("time_window"), now) if m.outbound else now
            if opens > now:
                self._hold(m, opens, f"waiting for the workflow's time window (opens {opens.isoformat()})")
                continue
            appt = loaded.appointments.get(m.appointment_id)
            link = self._meeting_location(session, m, appt, loaded, now)
            if link is None:
                continue  # held
            location = loaded.locations[m.location_id]
            in_doubt = m.status == MessageStatus.SENDING
            m.attempts += 1
            try:
                envelope = channels.render(m, self._context(m, appt, loaded, link, now), location, self.senders)
            except ProviderError as exc:
                self._fail(session, m, exc, now, notes)
                continue
            if m.channel == "in_app":
                session.add(Notification(location_id=m.location_id, user_id=m.user_id, message_id=m.id,
                                         title=m.subject or m.body[:120], body=m.body, created_at=now))
                self._mark(m, MessageStatus.SENT, now, provider="in_app", provider_id=m.id)
                continue
            if in_doubt:
                # The last attempt's outcome is unknown (its worker died after claiming) and no receipt
                # has reconciled it: send again, under the same id (see the module docstring).
                receipts.set_delivery(m, resent_in_doubt=(m.template.get("_delivery") or {}).get("resent_in_doubt", 0) + 1)
            m.status = MessageStatus.SENDING
            out.append((m, envelope))
        return out

    def _opted_out(self, m: Message, loaded: _Loaded) -> str | None:
        """Why this message must not go to its contact, or None."""
        if m.audience != "contact":
            return None
        contact = loaded.contacts.get(m.contact_id)
        if contact is None:
            return None
        if m.channel == "sms" and contact.sms_dnd:
            return "contact opted out of SMS"
        if m.channel == "email" and contact.email_dnd:
            return "contact opted out of email"
        return None

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
        waited_out = m.hold_until is None or now >= m.hold_until
        if state == "pending" and not waited_out:
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
            links=booking_links.links(self.senders.public_url, self.senders.secret_key, appt.id if appt else None),
        )

    def _record(self, session: Session, results: list[tuple[str, SendResult | Exception]], now: datetime,
                notes: _Notes) -> None:
        results = self._record_plain_successes(session, results, now)
        if not results:
            return
        ids = [message_id for message_id, _ in results]
        rows = {m.id: m for m in session.scalars(select(Message).where(Message.id.in_(ids)))}
        for message_id, result in results:
            m = rows.get(message_id)
            if m is None or m.status != MessageStatus.SENDING or m.lease_owner != self.owner:
                continue  # a receipt got there first, or someone else took it over after our lease ran out
            if isinstance(result, SendResult):
                self._mark(m, result.status, now, provider=result.provider, provider_id=result.provider_id)
                if result.detail:
                    receipts.set_delivery(m, **{k: v for k, v in result.detail.items() if k != "message_id"})
                continue
            exc = result
            retry_at = None
            if getattr(exc, "retryable", False):
                retry_after = getattr(exc, "retry_after", None)
                retry_at = self.retry.next_attempt(m.attempts, now, retry_after)
            if retry_at is None:
                self._fail(session, m, exc, now, notes)
                continue
            m.status = MessageStatus.PENDING
            m.error_code = getattr(exc, "provider_code", None)
            m.due_at = retry_at
            m.status_reason = f"retrying at {retry_at.isoformat()} (attempt {m.attempts} of {self.retry.max_attempts} failed): {exc}"
            m.lease_owner = m.lease_expires_at = None

    def _record_plain_successes(self, session: Session, results: list[tuple[str, SendResult | Exception]],
                                now: datetime) -> list[tuple[str, SendResult | Exception]]:
        """Record successes with nothing extra to keep in one UPDATE … executemany (the common case of a
        wave); return the rest for the row-by-row path. The WHERE keeps the same guard: only rows still
        ``sending`` under our lease."""
        plain = [(mid, r) for mid, r in results if isinstance(r, SendResult) and not r.detail]
        if plain:
            t = Message.__table__
            stmt = (
                update(t)
                .where(t.c.id == bindparam("b_id"), t.c.status == MessageStatus.SENDING, t.c.lease_owner == self.owner)
                .values(status=bindparam("b_status"), provider=bindparam("b_provider"), provider_id=bindparam("b_pid"),
                        sent_at=now, status_reason=None, lease_owner=None, lease_expires_at=None)
            )
            session.execute(stmt, [{"b_id": mid, "b_status": r.status, "b_provider": r.provider, "b_pid": r.provider_id}
                                   for mid, r in plain])
        return [(mid, r) for mid, r in results if not (isinstance(r, SendResult) and not r.detail)]

    def _fail(self, session: Session, m: Message, exc: Exception, now: datetime, notes: _Notes) -> None:
        """The message failed for good: record why, opt the contact out on 21610, tell the admins."""
        code = getattr(exc, "provider_code", None)
        retryable = getattr(exc, "retryable", False)
        m.status = MessageStatus.FAILED
        m.error_code = code
        m.status_reason = (f"failed after {m.attempts} attempts: {exc}" if retryable else f"failed: {exc}")
        m.lease_owner = m.lease_expires_at = None
        notes.add(m, "failed", f"{m.channel} to {m.to_address} {m.status_reason}", error_code=code)
        try:
            # In a savepoint: whatever goes wrong here must not stop the failure itself being recorded.
            with session.begin_nested():
                if code in OPTED_OUT_CODES and m.channel == "sms" and m.to_address:
                    withdrawn = inbound.opt_out(session, m.to_address, now=now, reason=f"Twilio {code} on send")
                    log.info("%s opted out (Twilio %s): %d pending text(s) withdrawn", m.to_address, code, withdrawn)
                else:
                    alerts.notify_admins(session, m, m.status_reason, now)
        except Exception:
            log.exception("follow-up of failed message %s (opt-out or admin alert) failed", m.id)

    def _mark(self, m: Message, status: str, now: datetime, *, provider: str, provider_id: str) -> None:
        m.status = status
        m.provider = provider
        m.provider_id = provider_id
        m.sent_at = now
        m.status_reason = None
        m.lease_owner = m.lease_expires_at = None

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


def cancel_for(session: Session, *, where, reason: str) -> int:
    """Withdraw pending messages matching ``where`` (opt-outs, cancellations)."""
    return session.execute(
        update(Message).where(where, Message.status == MessageStatus.PENDING)
        .values(status=MessageStatus.CANCELLED, status_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
