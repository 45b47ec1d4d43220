"""The data model: locations and their people, calendars, appointments, workflows, enrollments,
the outbox and in-app notifications, domain events and meetings.

Everything that matters for resuming work lives here, so a worker can die at any moment.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, synonym

from automations.store.db import Base

_last_micros = 0
_id_lock = threading.Lock()


def new_id() -> str:
    """32 hex characters: microseconds since the epoch (strictly increasing within a process), then
    randomness. Ids sort by creation, so rows sharing a timestamp (a frozen clock, one batch) still
    list in the order they were made. The wall clock here only orders ids; no logic reads it."""
    global _last_micros
    with _id_lock:
        _last_micros = max(time.time_ns() // 1000, _last_micros + 1)
        micros = _last_micros
    return f"{micros:014x}{secrets.token_hex(9)}"


def _id() -> Mapped[str]:
    return mapped_column(String(32), primary_key=True, default=new_id)


class Location(Base):
    """A business (HighLevel's sub-account). Owns everything else."""

    __tablename__ = "locations"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(400))
    website: Mapped[str | None] = mapped_column(String(400))
    custom_values: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Names of the contact custom fields this location defines (``contact.<key>`` merge fields).
    custom_field_keys: Mapped[list] = mapped_column(JSON, default=list)
    #: The public booking pages' path segment (``/book/<slug>/<calendar slug>``); unique when set.
    slug: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("slug", name="uq_locations_slug"),)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="default")
    #: sha256 of the key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: The key's first characters, to tell keys apart in a list (null for keys made before schema 0005).
    prefix: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    #: Set when revoked (or rotated away): the key no longer authenticates; the row stays for the audit trail.
    revoked_at: Mapped[datetime | None]


class RateLimitCounter(Base):
    """One fixed-window request counter (``bucket`` like ``auth-fail:ip:203.0.113.9``), shared by every
    process through the database; ``window_no`` is the window's number (epoch seconds // its length)."""

    __tablename__ = "rate_limit_counters"
    bucket: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_no: Mapped[int] = mapped_column(BigInteger)
    hits: Mapped[int] = mapped_column(Integer)


class AuditEvent(Base):
    """Who changed what: one row per change made through the API, the CLI or the pages."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_location_at", "location_id", "at"),)
    id: Mapped[str] = _id()
    location_id: Mapped[str | None] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"))
    #: ``api_key``, ``user`` or ``cli``; ``actor_id`` is the key's or user's id (the OS user for the CLI).
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime]
    summary: Mapped[str] = mapped_column(String(500), default="")

    #: Lists page by (created_at, id), like every other table.
    created_at = synonym("at")


class User(Base):
    """Staff: receives internal notifications, hosts appointments."""

    __tablename__ = "users"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    #: admin (location admin: settings, users, keys) | user. An agency admin role spanning locations may
    #: come later: scoping reads ``location_id`` from the signed-in user in one place (web.pages.auth).
    role: Mapped[str] = mapped_column(String(16), default="user")
    #: werkzeug.security scrypt hash; None means the user cannot sign in (API-only staff, not invited yet).
    password_hash: Mapped[str | None] = mapped_column(String(255))
    #: ``zoom``, a static link/text, or None.
    default_meeting_location: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime]

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Contact(Base):
    """The person who books; receives emails and texts."""

    __tablename__ = "contacts"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))  # E.164
    timezone: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list] = mapped_column(JSON, default=list)
    custom_fields: Mapped[dict] = mapped_column(JSON, default=dict)
    sms_dnd: Mapped[bool] = mapped_column(Boolean, default=False)
    email_dnd: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: Set when the contact's personal data was erased (``automations.booking.privacy``): the row stays
    #: only so past appointments and messages keep their references; the API answers 404 for it.
    erased_at: Mapped[datetime | None]

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Calendar(Base):
    __tablename__ = "calendars"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(100))
    #: personal | round_robin | collective | class | unassigned
    kind: Mapped[str] = mapped_column(String(20), default="round_robin")
    timezone: Mapped[str | None] = mapped_column(String(64))
    slot_minutes: Mapped[int] = mapped_column(Integer, default=30)
    appointments_per_slot: Mapped[int] = mapped_column(Integer, default=1)
    #: {"mon": [["09:00", "17:00"]], ...} in the calendar's time zone.
    availability: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Static meeting location (link or text) for unassigned calendars and as the Zoom fallback.
    meeting_location: Mapped[str | None] = mapped_column(String(1000))
    auto_confirm: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Minutes between slot starts (None: the slot length).
    slot_interval_minutes: Mapped[int | None] = mapped_column(Integer)
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    #: How soon a slot may start, counted from now.
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=0)
    #: How far ahead one may book (None: no limit).
    booking_window_days: Mapped[int | None] = mapped_column(Integer)
    #: Merge-field template for new appointments' titles, e.g. ``{{contact.name}} – Consultation``.
    title_template: Mapped[str | None] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    #: {"2026-12-24": [] (day off), "2026-12-27": [["10:00", "12:00"]] (those hours only)}.
    date_overrides: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    members: Mapped[list[CalendarMember]] = relationship(
        back_populates="calendar", cascade="all, delete-orphan", order_by="CalendarMember.position"
    )
    __table_args__ = (UniqueConstraint("location_id", "slug"),)


class CalendarMember(Base):
    """A user on a calendar, with their meeting location there (``zoom``, static text, or none)."""

    __tablename__ = "calendar_members"
    id: Mapped[str] = _id()
    calendar_id: Mapped[str] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    meeting_location: Mapped[str | None] = mapped_column(String(1000))
    #: Round robin: higher goes first among the free members (ties rotate fairly).
    priority: Mapped[int] = mapped_column(Integer, default=0)
    #: Weekly hours in the user's own time zone, like ``Calendar.availability``; None: the calendar's.
    availability: Mapped[dict | None] = mapped_column(JSON)
    #: Date overrides in the user's time zone, like ``Calendar.date_overrides``; None: the calendar's.
    date_overrides: Mapped[dict | None] = mapped_column(JSON)
    #: The member's Google calendar (an id from their calendar list) that appointments are written to.
    google_calendar_id: Mapped[str | None] = mapped_column(String(300))
    calendar: Mapped[Calendar] = relationship(back_populates="members")
    __table_args__ = (UniqueConstraint("calendar_id", "user_id"),)


class Appointment(Base):
    __tablename__ = "appointments"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    calendar_id: Mapped[str] = mapped_column(ForeignKey("calendars.id"), index=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"), index=True)
    assigned_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="confirmed")
    notes: Mapped[str] = mapped_column(Text, default="")
    is_recurring: Mapped[bool] = mapped_column(Boolean, default=False)
    rescheduled: Mapped[bool] = mapped_column(Boolean, default=False)
    meeting_id: Mapped[str | None] = mapped_column(ForeignKey("meetings.id"), index=True)
    #: The location text when no meeting provider is involved (static link, address).
    static_location: Mapped[str | None] = mapped_column(String(1000))
    #: Recorded after the fact (``record_past``): no confirmations, no meeting.
    record_past: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Occurrences of one recurring booking share this id.
    recurrence_id: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    #: Set when deleted through the API (cancelled first if it was still to come); the API answers 404.
    deleted_at: Mapped[datetime | None]
    __table_args__ = (
        # Availability reads who is busy when from these alone (covering: no table lookups, which a
        # class with hundreds of attendees in one slot would need one each of, on every booking).
        Index("ix_appointments_slot", "calendar_id", "start_at", "end_at", "assigned_user_id", "status"),
        Index("ix_appointments_host_time", "assigned_user_id", "start_at", "end_at", "calendar_id", "status"),
    )


class AppointmentHost(Base):
    """The other hosts a collective booking occupies besides its assigned user (who hosts the one
    meeting): availability reads them to know who is busy."""

    __tablename__ = "appointment_hosts"
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    __table_args__ = (Index("ix_appointment_hosts_user", "user_id", "appointment_id"),)


class BusyBlock(Base):
    """Time a user is busy outside Punctual (Google Calendar events and free/busy): blocks slots."""

    __tablename__ = "busy_blocks"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: Where it came from, e.g. ``google``; with ``external_id`` it identifies the block for updates.
    source: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(300))
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    title: Mapped[str] = mapped_column(String(300), default="")
    updated_at: Mapped[datetime]
    __table_args__ = (
        UniqueConstraint("user_id", "source", "external_id"),
        Index("ix_busy_blocks_user_time", "user_id", "start_at"),
    )


class Meeting(Base):
    """The canonical online meeting behind one or more appointments (same host, same slot)."""

    __tablename__ = "meetings"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    host_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))  # sandbox | zoom
    start_at: Mapped[datetime]
    end_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    external_id: Mapped[str | None] = mapped_column(String(64))
    join_url: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (Index("ix_meetings_due", "status", "next_attempt_at"),)


class DomainEvent(Base):
    """A change that workflows react to. Written in the same transaction as the change itself,
    then handled exactly once, in order per appointment, inside the transaction that claims it."""

    __tablename__ = "domain_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    appointment_id: Mapped[str | None] = mapped_column(ForeignKey("appointments.id"), index=True)
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        # Partial indexes: only the unhandled events, however long the history grows.
        Index("ix_domain_events_unprocessed", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
        Index("ix_domain_events_unprocessed_appt", "appointment_id", "id", sqlite_where=text("processed_at IS NULL"),
              postgresql_where=text("processed_at IS NULL")),
    )


class Workflow(Base):
    __tablename__ = "workflows"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    #: The editable document; publishing copies it into an immutable WorkflowVersion.
    draft: Mapped[dict] = mapped_column(JSON)
    current_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("workflow_versions.id", use_alter=True, name="fk_workflow_current_version")
    )
    #: Labels to group workflows in the list (the app's folders).
    tags: Mapped[list | None] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WorkflowVersion(Base):
    """A published, immutable workflow document. Enrollments run the version they started on."""

    __tablename__ = "workflow_versions"
    id: Mapped[str] = _id()
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict] = mapped_column(JSON)
    published_at: Mapped[datetime]
    #: The user who published it (None: the API or the CLI).
    published_by: Mapped[str | None] = mapped_column(String(32))
    __table_args__ = (UniqueConstraint("workflow_id", "number"),)


class Enrollment(Base):
    """One contact's run through one workflow version for one appointment."""

    __tablename__ = "enrollments"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("workflow_versions.id"))
    appointment_id: Mapped[str | None] = mapped_column(ForeignKey("appointments.id"))
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"))
    #: The event that enrolled it: the same event never enrolls twice.
    event_id: Mapped[str] = mapped_column(String(64))
    #: The appointment status that started it; cancellation exits those started by other statuses.
    trigger_status: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="active")
    #: True while this enrollment is live; NULL otherwise, so the unique index allows one live run. No
    #: column default: an enrollment that starts and finishes before its first flush is inserted with the
    #: None it ends with, which a default would turn into True (SQLAlchemy fills defaults for None).
    live: Mapped[bool | None] = mapped_column(Boolean)
    step_id: Mapped[str | None] = mapped_column(String(64))
    #: Steps executed so far: part of every idempotency key, so a re-run step reuses its keys.
    step_seq: Mapped[int] = mapped_column(Integer, default=0)
    wake_at: Mapped[datetime | None]
    #: What the current wait waits for: time | appointment_time | condition | reply.
    wait_kind: Mapped[str | None] = mapped_column(String(20))
    #: Skip outbound steps until the next wait (the ``skip_outbound`` past-time policy).
    skip_outbound: Mapped[bool] = mapped_column(Boolean, default=False)
    rescheduled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Messages queued to the contact so far; the send cap stops a runaway run (PUNCTUAL_MAX_SENDS_PER_ENROLLMENT).
    sends: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: A ``wait_reply`` in progress: the channel it listens on (sms | email | any) and since when replies count.
    reply_channel: Mapped[str | None] = mapped_column(String(8))
    reply_since: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    __table_args__ = (
        UniqueConstraint("workflow_id", "event_id", name="uq_enrollment_event"),
        # ``live`` is NULL once finished, and NULLs never collide: one live run per appointment.
        UniqueConstraint("workflow_id", "appointment_id", "live", name="uq_enrollment_live"),
        Index("ix_enrollments_due", "state", "wake_at"),
        # Events look up an appointment's (or contact's) runs by state; without these the planner
        # scans every waiting enrollment.
        Index("ix_enrollments_appointment_state", "appointment_id", "state"),
        Index("ix_enrollments_contact_state", "contact_id", "state"),
        # A workflow's enrollment history, newest first, one page at a time.
        Index("ix_enrollments_workflow_created", "workflow_id", "created_at", "id"),
        Index("ix_enrollments_workflow_state", "workflow_id", "state"),
    )


class EnrollmentLog(Base):
    """Every step outcome with its reason: sent, skipped: opted out, waiting until T, failed: ..."""

    __tablename__ = "enrollment_logs"
    #: Time-ordered string ids (not autoincrement) so a batch's log rows insert in one executemany.
    id: Mapped[str] = _id()
    enrollment_id: Mapped[str] = mapped_column(ForeignKey("enrollments.id", ondelete="CASCADE"), index=True)
    step_seq: Mapped[int] = mapped_column(Integer)
    step_id: Mapped[str | None] = mapped_column(String(64))
    step_type: Mapped[str | None] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    at: Mapped[datetime]


class Message(Base):
    """The outbox. A send step writes one row; delivery renders it from current data when due."""

    __tablename__ = "messages"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    enrollment_id: Mapped[str | None] = mapped_column(ForeignKey("enrollments.id"), index=True)
    step_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))  # email | sms | in_app
    audience: Mapped[str] = mapped_column(String(16))  # contact | user | custom
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    appointment_id: Mapped[str | None] = mapped_column(ForeignKey("appointments.id"), index=True)
    #: The appointment's start and status when the message was written: delivery withdraws it if the
    #: appointment has since moved away from that time or ended (cancelled, invalid, no-show).
    about_start_at: Mapped[datetime | None]
    about_status: Mapped[str | None] = mapped_column(String(16))
    to_address: Mapped[str | None] = mapped_column(String(2000))
    outbound: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Templates and sender settings; rendered at send time from current data.
    template: Mapped[dict] = mapped_column(JSON)
    needs_meeting_link: Mapped[bool] = mapped_column(Boolean, default=False)
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_reason: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_id: Mapped[str | None] = mapped_column(String(100), index=True)
    error_code: Mapped[str | None] = mapped_column(String(40))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    #: The latest moment to wait for a pending meeting link before the fallback policy applies.
    hold_until: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    #: When the provider reported the final delivery outcome (delivered / undelivered / failed).
    delivered_at: Mapped[datetime | None]
    #: The provider's own latest status (Twilio: queued, sent, delivered, no-answer ...); only moves forward.
    provider_status: Mapped[str | None] = mapped_column(String(40))
    #: Twilio answering-machine detection for calls and voicemail drops (human, machine_end_beep ...).
    answered_by: Mapped[str | None] = mapped_column(String(40))
    #: How many times it was sent again after a worker died with its outcome unknown (at-least-once).
    resent_in_doubt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: The receipts seen, oldest first, capped (``[{"at", "status", "error_code"?}]``).
    status_history: Mapped[list | None] = mapped_column(JSON)
    #: What the provider said when it accepted the message (Twilio segments, SMTP recipients and skipped
    #: addresses, the HTTP status of a webhook; never a remote response body).
    provider_detail: Mapped[dict | None] = mapped_column(JSON)
    __table_args__ = (Index("ix_messages_due", "status", "due_at"),)


class Notification(Base):
    """An in-app notification for a user (the builder's bell)."""

    __tablename__ = "notifications"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[str | None] = mapped_column(ForeignKey("messages.id"), unique=True)
    title: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class InboundMessage(Base):
    """A reply from a contact (Twilio inbound SMS). ``provider_id`` makes webhook retries harmless."""

    __tablename__ = "inbound_messages"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | email
    provider: Mapped[str] = mapped_column(String(20))
    provider_id: Mapped[str] = mapped_column(String(100), unique=True)
    from_address: Mapped[str] = mapped_column(String(320))
    to_address: Mapped[str | None] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text, default="")
    #: What the text meant to us: reply | opt_out | opt_in | help.
    intent: Mapped[str] = mapped_column(String(16), default="reply")
    received_at: Mapped[datetime]


class ZoomConnection(Base):
    """A user's own Zoom account. One Zoom user id is tied to one Punctual user, whatever the email."""

    __tablename__ = "zoom_connections"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    zoom_user_id: Mapped[str] = mapped_column(String(64), unique=True)
    zoom_account_id: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(320))
    #: Tokens encrypted at rest (automations.store.secrets_box).
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    scope: Mapped[str | None] = mapped_column(Text)
    #: active | broken (invalid_grant: the user must reconnect)
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    #: One refresh at a time per credential: whoever holds this lease refreshes, others wait and re-read.
    refresh_owner: Mapped[str | None] = mapped_column(String(64))
    refresh_expires_at: Mapped[datetime | None]
    #: Meeting create/update/delete requests counted against Zoom's 100 per user per UTC day.
    budget_day: Mapped[str | None] = mapped_column(String(10))
    budget_used: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OAuthState(Base):
    """An OAuth authorization in flight: the state we sent, who asked, and the PKCE verifier."""

    __tablename__ = "oauth_states"
    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_verifier_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class GoogleConnection(Base):
    """A user's Google account (Calendar). Tokens encrypted at rest (automations.store.secrets_box)."""

    __tablename__ = "google_connections"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    access_token_enc: Mapped[str | None] = mapped_column(Text)
    refresh_token_enc: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    scope: Mapped[str | None] = mapped_column(Text)
    #: active | broken (invalid_grant: the user must reconnect)
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class GoogleCalendarSync(Base):
    """One linked Google calendar of one user: incremental sync state and its push channel.

    Due when ``next_sync_at`` has passed (a push sets it to now; without push it is periodic); claimed
    under a lease like every other job, so a dead worker's sync is taken over."""

    __tablename__ = "google_calendar_syncs"
    id: Mapped[str] = _id()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    google_calendar_id: Mapped[str] = mapped_column(String(300))
    sync_token: Mapped[str | None] = mapped_column(Text)
    channel_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    channel_token_enc: Mapped[str | None] = mapped_column(Text)
    channel_resource_id: Mapped[str | None] = mapped_column(String(300))
    channel_expires_at: Mapped[datetime | None]
    next_sync_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    __table_args__ = (UniqueConstraint("user_id", "google_calendar_id"), Index("ix_google_syncs_due", "next_sync_at"))


class GoogleEventLink(Base):
    """An appointment's event in its host's Google calendar, and the durable job keeping it in step:
    due while ``wanted_version`` is ahead of ``written_version`` (every appointment change bumps it)."""

    __tablename__ = "google_event_links"
    appointment_id: Mapped[str] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    google_calendar_id: Mapped[str] = mapped_column(String(300))
    event_id: Mapped[str] = mapped_column(String(64))
    #: The etag our last write got back: an inbound change with this etag is our own write.
    etag: Mapped[str | None] = mapped_column(String(200))
    wanted_version: Mapped[int] = mapped_column(Integer, default=1)
    written_version: Mapped[int] = mapped_column(Integer, default=0)
    #: pending | synced | deleted | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]
    __table_args__ = (
        Index("ix_google_event_links_due", "status", "next_attempt_at"),
        # Deleted events come back from Google with little more than their id.
        Index("ix_google_event_links_event", "event_id"),
    )
