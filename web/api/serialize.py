"""Rows to JSON, as plain functions, plus ``RESPONSE_SHAPES``: the same fields written down for
the OpenAPI document (a test keeps the two in step).

Field names follow the API, not the tables: an appointment's ``start_at`` column is ``start_time``.
Datetimes are ISO 8601 in UTC with an offset. List serializers load related rows in one query per
table, never one per item.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.booking import meetings
from automations.documents.recipes import Recipe
from automations.store.models import (
    Appointment,
    Calendar,
    Contact,
    Enrollment,
    EnrollmentLog,
    Meeting,
    Message,
    Notification,
    User,
    Workflow,
    WorkflowVersion,
)


def ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _by_id(session: Session, model: Any, ids) -> dict[str, Any]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    if len(ids) == 1:  # one row (a single resource): the session often holds it already, with no query
        row = session.get(model, next(iter(ids)))
        return {row.id: row} if row is not None else {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


# -- contacts ----------------------------------------------------------------------------------------


def contact(c: Contact) -> dict:
    return {
        "id": c.id, "first_name": c.first_name, "last_name": c.last_name, "name": c.name, "email": c.email,
        "phone": c.phone, "timezone": c.timezone, "tags": list(c.tags or []),
        "custom_fields": dict(c.custom_fields or {}), "sms_dnd": c.sms_dnd, "email_dnd": c.email_dnd,
        "created_at": ts(c.created_at), "updated_at": ts(c.updated_at),
    }


# -- calendars ---------------------------------------------------------------------------------------


def calendar(cal: Calendar) -> dict:
    return {
        "id": cal.id, "name": cal.name, "slug": cal.slug, "kind": cal.kind, "timezone": cal.timezone,
        "slot_minutes": cal.slot_minutes, "appointments_per_slot": cal.appointments_per_slot,
        "meeting_location": cal.meeting_location, "auto_confirm": cal.auto_confirm,
        "created_at": ts(cal.created_at),
    }


def calendar_detail(session: Session, cal: Calendar) -> dict:
    users = _by_id(session, User, (m.user_id for m in cal.members))
    members = []
    for m in cal.members:
        user = users.get(m.user_id)
        members.append({
            "user_id": m.user_id, "name": user.name if user else "", "email": user.email if user else None,
            "position": m.position,
            # The member's own setting ("zoom", a static link or text, or null = the calendar's).
            "meeting_location": m.meeting_location,
        })
    return {**calendar(cal), "availability": dict(cal.availability or {}), "members": members}


# -- appointments ------------------------------------------------------------------------------------


def appointments(session: Session, rows: list[Appointment]) -> list[dict]:
    meetings_by_id = _by_id(session, Meeting, (a.meeting_id for a in rows))
    calendars = _by_id(session, Calendar, (a.calendar_id for a in rows))
    out = []
    for a in rows:
        meeting = meetings_by_id.get(a.meeting_id)
        out.append({
            "id": a.id, "calendar_id": a.calendar_id, "contact_id": a.contact_id,
            "assigned_user_id": a.assigned_user_id, "title": a.title, "status": a.status,
            "start_time": ts(a.start_at), "end_time": ts(a.end_at), "timezone": a.timezone, "notes": a.notes,
            "is_recurring": a.is_recurring, "rescheduled": a.rescheduled,
            "meeting": {
                "state": meetings.link_state(meeting),
                "provider": meeting.provider if meeting else None,
                "join_url": meeting.join_url if meeting else None,
                "error": meeting.error if meeting else None,
            },
            "meeting_location": meetings.current_location(a, meeting, calendars.get(a.calendar_id)),
            "created_at": ts(a.created_at), "updated_at": ts(a.updated_at),
        })
    return out


def appointment(session: Session, appt: Appointment) -> dict:
    return appointments(session, [appt])[0]


# -- workflows ---------------------------------------------------------------------------------------


def workflows(session: Session, rows: list[Workflow]) -> list[dict]:
    versions = _by_id(session, WorkflowVersion, (w.current_version_id for w in rows))
    out = []
    for w in rows:
        current = versions.get(w.current_version_id)
        out.append({
            "id": w.id, "name": w.name, "status": w.status,
            "current_version": current.number if current else None,
            "published_at": ts(current.published_at) if current else None,
            "created_at": ts(w.created_at), "updated_at": ts(w.updated_at),
        })
    return out


def workflow_detail(session: Session, wf: Workflow) -> dict:
    history = session.scalars(
        select(WorkflowVersion).where(WorkflowVersion.workflow_id == wf.id).order_by(WorkflowVersion.number)
    )
    return {
        **workflows(session, [wf])[0],
        "versions": [{"number": v.number, "published_at": ts(v.published_at)} for v in history],
        "draft": wf.draft,
    }


def recipe(r: Recipe) -> dict:
    return r.summary()


# -- enrollments -------------------------------------------------------------------------------------


def enrollments(session: Session, rows: list[Enrollment]) -> list[dict]:
    versions = _by_id(session, WorkflowVersion, (e.version_id for e in rows))
    return [{
        "id": e.id, "workflow_id": e.workflow_id,
        "version": versions[e.version_id].number if e.version_id in versions else None,
        "appointment_id": e.appointment_id, "contact_id": e.contact_id, "state": e.state,
        "trigger_status": e.trigger_status, "step_id": e.step_id, "wait_kind": e.wait_kind,
        "wake_at": ts(e.wake_at), "rescheduled": e.rescheduled, "exit_reason": e.exit_reason,
        "created_at": ts(e.created_at), "updated_at": ts(e.updated_at), "finished_at": ts(e.finished_at),
    } for e in rows]


def enrollment_detail(session: Session, e: Enrollment) -> dict:
    lines = session.scalars(
        select(EnrollmentLog).where(EnrollmentLog.enrollment_id == e.id).order_by(EnrollmentLog.at, EnrollmentLog.id)
    )
    return {
        **enrollments(session, [e])[0],
        "log": [{"step_id": line.step_id, "step_type": line.step_type, "outcome": line.outcome,
                 "reason": line.reason, "at": ts(line.at)} for line in lines],
    }


# -- outbox and notifications ------------------------------------------------------------------------


def message(m: Message) -> dict:
    return {
        "id": m.id, "channel": m.channel, "audience": m.audience, "to": m.to_address,
        "contact_id": m.contact_id, "user_id": m.user_id, "appointment_id": m.appointment_id,
        "enrollment_id": m.enrollment_id, "step_id": m.step_id,
        # Rendered at send time from current data: null until then.
        "subject": m.subject, "body": m.body,
        "status": m.status, "status_reason": m.status_reason, "provider": m.provider,
        "provider_id": m.provider_id, "error_code": m.error_code, "attempts": m.attempts,
        "due_at": ts(m.due_at), "created_at": ts(m.created_at), "sent_at": ts(m.sent_at),
        # The provider's own last status (Twilio: queued, sent, delivered, ...) and when a final one came.
        "provider_status": ((m.template or {}).get("_delivery") or {}).get("provider_status"),
        "delivered_at": ts(m.delivered_at),
    }


def notification(n: Notification) -> dict:
    return {
        "id": n.id, "user_id": n.user_id, "message_id": n.message_id, "title": n.title, "body": n.body,
        "read": n.read_at is not None, "created_at": ts(n.created_at), "read_at": ts(n.read_at),
    }


# -- the same, for the OpenAPI document ----------------------------------------------------------------
#
# A tiny notation: "string", "integer", "boolean", "object", "date-time", "any"; a trailing "?" means
# nullable; ["x"] is an array of x; a capitalized name refers to another shape.

RESPONSE_SHAPES: dict[str, dict[str, Any]] = {
    "Contact": {
        "id": "string", "first_name": "string", "last_name": "string", "name": "string", "email": "string?",
        "phone": "string?", "timezone": "string?", "tags": ["string"], "custom_fields": "object",
        "sms_dnd": "boolean", "email_dnd": "boolean", "created_at": "date-time", "updated_at": "date-time",
    },
    "Calendar": {
        "id": "string", "name": "string", "slug": "string", "kind": "string", "timezone": "string?",
        "slot_minutes": "integer", "appointments_per_slot": "integer", "meeting_location": "string?",
        "auto_confirm": "boolean", "created_at": "date-time",
    },
    "CalendarMember": {
        "user_id": "string", "name": "string", "email": "string?", "position": "integer",
        "meeting_location": "string?",
    },
    "CalendarDetail": {"...": "Calendar", "availability": "object", "members": ["CalendarMember"]},
    "MeetingInfo": {"state": "string", "provider": "string?", "join_url": "string?", "error": "string?"},
    "Appointment": {
        "id": "string", "calendar_id": "string", "contact_id": "string", "assigned_user_id": "string?",
        "title": "string", "status": "string", "start_time": "date-time", "end_time": "date-time",
        "timezone": "string", "notes": "string", "is_recurring": "boolean", "rescheduled": "boolean",
        "meeting": "MeetingInfo", "meeting_location": "string?", "created_at": "date-time",
        "updated_at": "date-time",
    },
    "Workflow": {
        "id": "string", "name": "string", "status": "string", "current_version": "integer?",
        "published_at": "date-time?", "created_at": "date-time", "updated_at": "date-time",
    },
    "WorkflowVersionInfo": {"number": "integer", "published_at": "date-time"},
    "WorkflowDetail": {"...": "Workflow", "versions": ["WorkflowVersionInfo"], "draft": "object"},
    "Recipe": {"slug": "string", "title": "string", "description": "string", "steps": "integer"},
    "Enrollment": {
        "id": "string", "workflow_id": "string", "version": "integer?", "appointment_id": "string?",
        "contact_id": "string", "state": "string", "trigger_status": "string?", "step_id": "string?",
        "wait_kind": "string?", "wake_at": "date-time?", "rescheduled": "boolean", "exit_reason": "string?",
        "created_at": "date-time", "updated_at": "date-time", "finished_at": "date-time?",
    },
    "EnrollmentLogLine": {
        "step_id": "string?", "step_type": "string?", "outcome": "string", "reason": "string", "at": "date-time",
    },
    "EnrollmentDetail": {"...": "Enrollment", "log": ["EnrollmentLogLine"]},
    "Message": {
        "id": "string", "channel": "string", "audience": "string", "to": "string?", "contact_id": "string?",
        "user_id": "string?", "appointment_id": "string?", "enrollment_id": "string?", "step_id": "string?",
        "subject": "string?", "body": "string?", "status": "string", "status_reason": "string?",
        "provider": "string?", "provider_id": "string?", "error_code": "string?", "attempts": "integer",
        "due_at": "date-time", "created_at": "date-time", "sent_at": "date-time?",
        "provider_status": "string?", "delivered_at": "date-time?",
    },
    "Notification": {
        "id": "string", "user_id": "string", "message_id": "string?", "title": "string", "body": "string",
        "read": "boolean", "created_at": "date-time", "read_at": "date-time?",
    },
    # Users and their Zoom connection (web/api/users.py builds these).
    "ZoomConnectionInfo": {
        "status": "string", "email": "string?", "status_reason": "string?", "connected_at": "date-time?",
        "requests_today": "integer", "daily_limit": "integer",
    },
    "User": {
        "id": "string", "first_name": "string", "last_name": "string", "name": "string", "email": "string?",
        "role": "string", "timezone": "string?", "default_meeting_location": "string?",
        "zoom": "ZoomConnectionInfo", "created_at": "date-time",
    },
    "ZoomAuthorization": {"authorize_url": "string", "expires_at": "date-time"},
    "ZoomDisconnect": {"user_id": "string", "status": "string", "meetings_to_delete": "integer", "message": "string"},
    "DefaultMeetingLocation": {"user": "User", "calendars_updated": "integer"},
}
