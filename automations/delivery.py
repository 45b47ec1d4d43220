"""Delivering the outbox: claim due messages under a lease, render them from current data, send
them through the channel's provider outside any transaction, record what happened.

A message whose text needs ``appointment.meeting_location`` while the meeting is still being
created is held (bounded by ``hold_until``) and released the moment the link resolves; after that
the workflow's policy applies (send with the calendar's fallback text, or hold and alert the host).
No message goes out with an empty link.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from automations import meetings, merge_fields, render_context
from automations.db import is_postgres
from automations.errors import ProviderError
from automations.models import Appointment, Calendar, Contact, Location, Meeting, Message, Notification, User
from automations.retry import RetryPolicy
from automations.states import MessageStatus
from providers.base import EmailSender, OutgoingEmail, OutgoingSms, SendResult, SmsSender

log = logging.getLogger(__name__)
HOLD_RECHECK = timedelta(minutes=15)


@dataclass
class Senders:
    email: EmailSender
    sms: SmsSender
    default_from_email: str = "reminders@punctual.invalid"


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


class Delivery:
    def __init__(self, factory: sessionmaker[Session], senders: Senders, *, owner: str,
                 lease_seconds: int = 120, retry: RetryPolicy | None = None) -> None:
        self.factory = factory
        self.senders = senders
        self.owner = owner
        self.lease = timedelta(seconds=lease_seconds)
        self.retry = retry or RetryPolicy()

    def run_batch(self, now: datetime, limit: int = 500) -> int:
        """Deliver up to ``limit`` due messages. Returns how many were claimed."""
        with self.factory() as session, session.begin():
            claimed = self._claim(session, now, limit)
            if not claimed:
                return 0
            to_send = self._prepare(session, claimed, now)
        results = self._send(to_send)
        with self.factory() as session, session.begin():
            self._record(session, results, now)
        return len(claimed)

    def _claim(self, session: Session, now: datetime, limit: int) -> list[Message]:
        # A message left in ``sending`` by a worker that died is taken up again once its lease
        # has run out; providers see the same message id and idempotency key.
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

    def _prepare(self, session: Session, messages: list[Message], now: datetime) -> list[tuple[Message, object]]:
        """Render each message; hold those waiting on a link; write in-app ones directly."""
        loaded = _Loaded(session, messages)
        out: list[tuple[Message, object]] = []
        for m in messages:
            appt = loaded.appointments.get(m.appointment_id)
            link = self._meeting_location(session, m, appt, loaded, now)
            if link is None:
                continue  # held
            context = self._context(m, appt, loaded, link, now)
            t = m.template
            m.subject = merge_fields.render(t.get("subject") or "", context) or None
            m.body = merge_fields.render(t.get("body") or "", context)
            m.html = merge_fields.render(t["html"], context, escape_html=True) if t.get("html") else None
            m.attempts += 1
            if m.channel == "in_app":
                session.add(Notification(location_id=m.location_id, user_id=m.user_id, message_id=m.id,
                                         title=m.subject or m.body[:120], body=m.body, created_at=now))
                self._mark(m, MessageStatus.SENT, now, provider="in_app", provider_id=m.id)
                continue
            m.status = MessageStatus.SENDING
            location = loaded.locations[m.location_id]
            out.append((m, self._envelope(m, location)))
        return out

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
        )

    def _envelope(self, m: Message, location: Location) -> object:
        t = m.template
        if m.channel == "email":
            return OutgoingEmail(
                message_id=m.id, to=m.to_address, subject=m.subject or "", text=m.body or "", html=m.html,
                from_email=t.get("from_email") or location.email or self.senders.default_from_email,
                from_name=t.get("from_name") or location.name, reply_to=t.get("reply_to"),
                cc=tuple(t.get("cc") or ()), bcc=tuple(t.get("bcc") or ()),
            )
        return OutgoingSms(message_id=m.id, to=m.to_address, body=m.body or "", from_number=t.get("from_number"),
                           media_urls=tuple(t.get("media_urls") or ()))

    def _send(self, batch: list[tuple[Message, object]]) -> list[tuple[str, SendResult | Exception]]:
        results: list[tuple[str, SendResult | Exception]] = []
        emails = [(m, env) for m, env in batch if m.channel == "email"]
        if emails:
            try:
                outcomes = self.senders.email.send_batch([env for _, env in emails])
            except ProviderError as exc:
                outcomes = [exc] * len(emails)
            results += [(m.id, r) for (m, _), r in zip(emails, outcomes, strict=True)]
        for m, env in batch:
            if m.channel == "sms":
                try:
                    results.append((m.id, self.senders.sms.send(env)))
                except ProviderError as exc:
                    results.append((m.id, exc))
        return results

    def _record(self, session: Session, results: list[tuple[str, SendResult | Exception]], now: datetime) -> None:
        for message_id, result in results:
            m = session.get(Message, message_id)
            if m is None or m.status != MessageStatus.SENDING or m.lease_owner != self.owner:
                continue  # someone else took it over after our lease ran out
            if isinstance(result, SendResult):
                self._mark(m, result.status, now, provider=result.provider, provider_id=result.provider_id)
                continue
            exc = result
            m.error_code = getattr(exc, "provider_code", None)
            retry_at = self.retry.next_attempt(m.attempts, now, getattr(exc, "retry_after", None)) if getattr(exc, "retryable", False) else None
            if retry_at is None:
                m.status = MessageStatus.FAILED
                m.status_reason = f"failed: {exc}"
            else:
                m.status = MessageStatus.PENDING
                m.due_at = retry_at
                m.status_reason = f"retrying after: {exc}"
            m.lease_owner = m.lease_expires_at = None

    def _mark(self, m: Message, status: str, now: datetime, *, provider: str, provider_id: str) -> None:
        m.status = status
        m.provider = provider
        m.provider_id = provider_id
        m.sent_at = now
        m.status_reason = None
        m.lease_owner = m.lease_expires_at = None


def cancel_for(session: Session, *, where, reason: str) -> int:
    """Withdraw pending messages matching ``where`` (opt-outs, cancellations)."""
    return session.execute(
        update(Message).where(where, Message.status == MessageStatus.PENDING)
        .values(status=MessageStatus.CANCELLED, status_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
