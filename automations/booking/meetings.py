"""The canonical meeting behind appointments, and its lifecycle rules (the seeds' FAQ):

- booking on a Zoom location creates a meeting; the same host in the same slot shares one;
- an edit that keeps date and time keeps the link;
- a reschedule gets a new meeting unless another appointment already holds one in the new slot;
- cancel or delete drops the meeting unless another appointment still uses it.

This module only changes rows; ``run_meeting_jobs`` talks to the provider outside any transaction
and records the result, so a provider call never holds database locks.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automations.store.db import get_row
from automations.store.models import Appointment, Calendar, Meeting, User
from automations.store.states import AppointmentStatus, MeetingStatus

ZOOM = "zoom"
DELETING = "deleting"
#: The provider of a meeting not yet made: the meeting job records its own name when it makes it.
UNASSIGNED = "unassigned"
INACTIVE_APPOINTMENT = (AppointmentStatus.CANCELLED, AppointmentStatus.INVALID)


def location_setting(session: Session, appointment: Appointment, calendar: Calendar) -> str | None:
    """The meeting location for this appointment's host on this calendar: ``zoom``, static text, or None."""
    if calendar.kind == "unassigned" or not appointment.assigned_user_id:
        return calendar.meeting_location
    # The calendar's members are usually loaded already (booking checked them): no query then.
    member = next((m for m in calendar.members if m.user_id == appointment.assigned_user_id), None)
    if member and member.meeting_location:
        return member.meeting_location
    user = session.get(User, appointment.assigned_user_id)
    if user and user.default_meeting_location:
        return user.default_meeting_location
    return calendar.meeting_location


def attach(session: Session, appointment: Appointment, calendar: Calendar, *, now: datetime) -> None:
    """Give a (newly booked or moved) appointment its meeting location. A new meeting names no provider yet:
    the meeting job records the one that makes it."""
    setting = location_setting(session, appointment, calendar)
    if (setting or "").strip().lower() != ZOOM or not appointment.assigned_user_id:
        appointment.static_location = setting
        appointment.meeting_id = None
        return
    appointment.static_location = None
    shared = session.scalar(
        select(Meeting)
        .where(
            Meeting.host_user_id == appointment.assigned_user_id,
            Meeting.start_at == appointment.start_at,
            Meeting.end_at == appointment.end_at,
            Meeting.status.in_((MeetingStatus.PENDING, MeetingStatus.READY)),
        )
        .order_by(Meeting.created_at)
        .limit(1)
    )
    if shared is None:
        shared = Meeting(
            location_id=appointment.location_id,
            host_user_id=appointment.assigned_user_id,
            provider=UNASSIGNED,
            start_at=appointment.start_at,
            end_at=appointment.end_at,
            status=MeetingStatus.PENDING,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        session.add(shared)
        session.flush()
    elif shared.status == MeetingStatus.READY and shared.external_id:
        # Someone new is about to get this link: the meeting job checks it still exists at the provider
        # first (recreating it if the host deleted it there), so no one is sent a dead link.
        shared.status = MeetingStatus.PENDING
        shared.next_attempt_at = now
        shared.updated_at = now
    appointment.meeting_id = shared.id


def detach(session: Session, appointment: Appointment, *, now: datetime) -> None:
    """Drop the appointment's meeting; delete it at the provider unless another appointment uses it."""
    meeting_id = appointment.meeting_id
    appointment.meeting_id = None
    if meeting_id is None:
        return
    session.flush()
    users = session.scalar(
        select(func.count()).select_from(Appointment).where(
            Appointment.meeting_id == meeting_id, Appointment.status.not_in(INACTIVE_APPOINTMENT)
        )
    )
    if users:
        return
    meeting = get_row(session, Meeting, meeting_id)
    if meeting.status in (DELETING, MeetingStatus.DELETED):
        return  # already going (a disconnect that deletes the host's meetings)
    if meeting.external_id:
        meeting.status = DELETING
        meeting.next_attempt_at = now
    else:
        meeting.status = MeetingStatus.DELETED  # never created at the provider
    meeting.updated_at = now


def move(session: Session, appointment: Appointment, calendar: Calendar, *, now: datetime) -> None:
    """After a reschedule or a host change: a new meeting, or the one already in the new slot."""
    detach(session, appointment, now=now)
    attach(session, appointment, calendar, now=now)


def link_state(meeting: Meeting | None) -> str:
    """none | pending | ready | failed — what a message needing the link should do."""
    if meeting is None:
        return "none"
    if meeting.status == MeetingStatus.READY and meeting.join_url:
        return "ready"
    if meeting.status in (MeetingStatus.FAILED, MeetingStatus.DELETED, DELETING):
        # Deleted under a live appointment (the host disconnected Zoom and had its meetings deleted):
        # the link is dead, so it counts as failed and the workflow's fallback policy applies.
        return "failed"
    return "pending"


def fallback_text(calendar: Calendar | None) -> str:
    """The calendar's static location, used when a Zoom link cannot be had ("zoom" itself is no text)."""
    text_ = ((calendar.meeting_location if calendar else None) or "").strip()
    return "" if text_.lower() == ZOOM else text_


def current_location(appointment: Appointment, meeting: Meeting | None, calendar: Calendar | None) -> str | None:
    """What ``appointment.meeting_location`` renders to right now under the fallback policy; None
    while a meeting is still being created (or failed with nothing to fall back on)."""
    state = link_state(meeting)
    if state == "ready" and meeting is not None:
        return meeting.join_url
    if state == "none":
        return appointment.static_location or ""
    if state == "failed":
        return fallback_text(calendar) or None
    return None



