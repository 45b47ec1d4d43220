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
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

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
    created_at: Mapped[datetime]


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = _id()
    location_id: Mapped[str] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="default")
    #: sha256 of the key; the key itself is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


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
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    __table_args__ = (Index("ix_appointments_slot", "calendar_id", "start_at"),)


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
    #: True while this enrollment is live; NULL otherwise, so the unique index allows one live run.
    live: Mapped[bool | None] = mapped_column(Boolean, default=True)
    step_id: Mapped[str | None] = mapped_column(String(64))
    #: Steps executed so far: part of every idempotency key, so a re-run step reuses its keys.
    step_seq: Mapped[int] = mapped_column(Integer, default=0)
    wake_at: Mapped[datetime | None]
    #: What the current wait waits for: time | appointment_time | condition | reply.
    wait_kind: Mapped[str | None] = mapped_column(String(20))
    #: Skip outbound steps until the next wait (the ``skip_outbound`` past-time policy).
    skip_outbound: Mapped[bool] = mapped_column(Boolean, default=False)
    rescheduled: Mapped[bool] = mapped_column(Boolean, default=False)
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
