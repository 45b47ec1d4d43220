"""Status enums, stored as their string values. One comment per member says what it means."""

from __future__ import annotations

from enum import StrEnum


class AppointmentStatus(StrEnum):
    NEW = "new"  # booked, not yet confirmed
    CONFIRMED = "confirmed"  # confirmed by the business or auto-confirm
    CANCELLED = "cancelled"  # cancelled by anyone
    SHOWED = "showed"  # the contact attended
    NOSHOW = "noshow"  # the contact did not attend
    INVALID = "invalid"  # spam or entered by mistake


#: Statuses that end an appointment's pending reminders (enrollments started by other statuses exit).
ENDING_STATUSES = frozenset({AppointmentStatus.CANCELLED, AppointmentStatus.INVALID, AppointmentStatus.NOSHOW})


class ModifiedBy(StrEnum):
    API = "api"  # through the JSON API or CLI
    CUSTOMER = "customer"  # by the contact (booking page, cancel/reschedule links)
    USER = "user"  # by staff in the app
    WORKFLOW = "workflow"  # by an update_appointment_status step


class EventKind(StrEnum):
    APPOINTMENT_BOOKED = "appointment.booked"  # a new appointment
    APPOINTMENT_STATUS = "appointment.status_changed"  # status moved
    APPOINTMENT_RESCHEDULED = "appointment.rescheduled"  # start or end moved
    APPOINTMENT_UPDATED = "appointment.updated"  # other fields edited (title, notes, user)
    CONTACT_UPDATED = "contact.updated"  # contact fields or tags changed
    CONTACT_REPLIED = "contact.replied"  # an inbound reply arrived (SMS, email)
    MEETING_RESOLVED = "meeting.resolved"  # a meeting link became ready or failed for good


class EnrollmentState(StrEnum):
    ACTIVE = "active"  # due to run now (claimable)
    WAITING = "waiting"  # parked on a wait step until wake_at or an event
    COMPLETED = "completed"  # ran off the end of the workflow
    EXITED = "exited"  # left early: cancelled, rescheduled, removed
    FAILED = "failed"  # stopped by an error it cannot get past


LIVE_ENROLLMENT_STATES = (EnrollmentState.ACTIVE, EnrollmentState.WAITING)


class MessageStatus(StrEnum):
    PENDING = "pending"  # in the outbox, to be rendered and delivered when due
    SENDING = "sending"  # handed to a provider; outcome not yet recorded
    SENT = "sent"  # accepted by the provider (or captured)
    DELIVERED = "delivered"  # the provider reported delivery
    UNDELIVERED = "undelivered"  # the carrier could not deliver
    FAILED = "failed"  # gave up: permanent error or out of retries
    CANCELLED = "cancelled"  # withdrawn before sending (opt-out, appointment cancelled)


class MeetingStatus(StrEnum):
    PENDING = "pending"  # being created at the provider
    READY = "ready"  # join URL known
    FAILED = "failed"  # could not be created; the fallback policy applies
    DELETED = "deleted"  # removed at the provider


class WorkflowStatus(StrEnum):
    DRAFT = "draft"  # never runs
    PUBLISHED = "published"  # enrolls contacts on its current version
