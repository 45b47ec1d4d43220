"""Rows to JSON: gather what each response needs (related rows loaded in one query per table, never
one per item) and dump it through its schema in ``web.api.responses``, which alone decides the fields.

Datetimes are ISO 8601 in UTC with an offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.booking import meetings
from automations.booking.privacy import ContactData
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
from web.api import responses as out


def ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _by_id(session: Session, model: Any, ids) -> dict[str | None, Any]:
    ids = {i for i in ids if i}
    if not ids:
        return {}
    if len(ids) == 1:  # one row (a single resource): the session often holds it already, with no query
        row = session.get(model, next(iter(ids)))
        return {row.id: row} if row is not None else {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(ids)))}


# -- contacts ----------------------------------------------------------------------------------------


def contact(c: Contact) -> dict:
    return out.dump(out.ContactOut, c)


# -- calendars ---------------------------------------------------------------------------------------


def calendar(cal: Calendar) -> dict:
    values = {name: getattr(cal, name) for name in out.CalendarOut().fields}
    values["description"] = cal.description or ""
    return out.dump(out.CalendarOut, values)


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
            "priority": m.priority or 0, "availability": m.availability, "date_overrides": m.date_overrides,
            "google_calendar_id": m.google_calendar_id,
        })
    values = {name: getattr(cal, name) for name in out.CalendarOut().fields}
    values["description"] = cal.description or ""
    return out.dump(out.CalendarDetailOut, {**values, "availability": dict(cal.availability or {}),
                                            "date_overrides": dict(cal.date_overrides or {}), "members": members})


# -- appointments ------------------------------------------------------------------------------------


def appointments(session: Session, rows: list[Appointment]) -> list[dict]:
    return out.dump_many(out.AppointmentOut, _appointment_values(session, rows))


def _appointment_values(session: Session, rows: list[Appointment]) -> list[dict]:
    meetings_by_id = _by_id(session, Meeting, (a.meeting_id for a in rows))
    calendars = _by_id(session, Calendar, (a.calendar_id for a in rows))
    values = []
    for a in rows:
        meeting = meetings_by_id.get(a.meeting_id)
        values.append({
            "id": a.id, "calendar_id": a.calendar_id, "contact_id": a.contact_id,
            "assigned_user_id": a.assigned_user_id, "title": a.title, "status": a.status,
            "start_time": a.start_at, "end_time": a.end_at, "timezone": a.timezone, "notes": a.notes,
            "is_recurring": a.is_recurring, "rescheduled": a.rescheduled, "record_past": bool(a.record_past),
            "recurrence_id": a.recurrence_id,
            "meeting": {
                "state": meetings.link_state(meeting),
                "provider": meeting.provider if meeting else None,
                "join_url": meeting.join_url if meeting else None,
                "error": meeting.error if meeting else None,
            },
            "meeting_location": meetings.current_location(a, meeting, calendars.get(a.calendar_id)),
            "created_at": a.created_at, "updated_at": a.updated_at,
        })
    return values


def appointment(session: Session, appt: Appointment) -> dict:
    return appointments(session, [appt])[0]


# -- workflows ---------------------------------------------------------------------------------------


def _workflow_values(session: Session, rows: list[Workflow]) -> list[dict]:
    versions = _by_id(session, WorkflowVersion, (w.current_version_id for w in rows))
    values = []
    for w in rows:
        current = versions.get(w.current_version_id)
        values.append({
            "id": w.id, "name": w.name, "status": w.status,
            "current_version": current.number if current else None,
            "published_at": current.published_at if current else None,
            "created_at": w.created_at, "updated_at": w.updated_at,
        })
    return values


def workflows(session: Session, rows: list[Workflow]) -> list[dict]:
    return out.dump_many(out.WorkflowOut, _workflow_values(session, rows))


def workflow_detail(session: Session, wf: Workflow) -> dict:
    history = session.scalars(
        select(WorkflowVersion).where(WorkflowVersion.workflow_id == wf.id).order_by(WorkflowVersion.number)
    )
    return out.dump(out.WorkflowDetailOut, {**_workflow_values(session, [wf])[0], "versions": list(history),
                                            "draft": wf.draft})


def recipe(r: Recipe) -> dict:
    return out.dump(out.RecipeOut, r.summary())


# -- enrollments -------------------------------------------------------------------------------------


def _enrollment_values(session: Session, rows: list[Enrollment]) -> list[dict]:
    versions = _by_id(session, WorkflowVersion, (e.version_id for e in rows))
    fields_ = [name for name in out.EnrollmentOut().fields if name != "version"]
    return [{**{name: getattr(e, name) for name in fields_},
             "version": versions[e.version_id].number if e.version_id in versions else None} for e in rows]


def enrollments(session: Session, rows: list[Enrollment]) -> list[dict]:
    return out.dump_many(out.EnrollmentOut, _enrollment_values(session, rows))


def enrollment_detail(session: Session, e: Enrollment) -> dict:
    lines = session.scalars(
        select(EnrollmentLog).where(EnrollmentLog.enrollment_id == e.id).order_by(EnrollmentLog.at, EnrollmentLog.id)
    )
    return out.dump(out.EnrollmentDetailOut, {**_enrollment_values(session, [e])[0], "log": list(lines)})


def contact_export(session: Session, data: ContactData, at: datetime) -> dict:
    enrollments_ = [{**values, "log": data.logs[values["id"]]}
                    for values in _enrollment_values(session, data.enrollments)]
    return out.dump(out.ContactExportOut, {
        "contact": data.contact,
        "appointments": _appointment_values(session, data.appointments),
        "enrollments": enrollments_,
        "messages": [_message_values(m) for m in data.messages],
        "replies": data.replies,
        "exported_at": at,
    })


# -- outbox and notifications ------------------------------------------------------------------------


def message(m: Message) -> dict:
    return out.dump(out.MessageOut, _message_values(m))


def _message_values(m: Message) -> dict:
    values = {name: getattr(m, name, None) for name in out.MessageOut().fields}
    values.update({
        "to": m.to_address,
        "provider_status": m.provider_status,
        "test": bool((m.template or {}).get("test")),
    })
    return values


def notification(n: Notification) -> dict:
    values = {name: getattr(n, name, None) for name in out.NotificationOut().fields}
    values["read"] = n.read_at is not None
    return out.dump(out.NotificationOut, values)
