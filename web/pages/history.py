"""Seeing what happened: a workflow's enrollments (filtered, paginated, fast at 10,000), one enrollment's
step-by-step log, contacts, message detail, the outbox, and the notification bell.

Times are shown in the viewer's time zone with the zone named (``timefmt`` filter in :mod:`web.pages.base`).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, or_, select

from automations.engine import enrollment_admin
from automations.errors import Conflict, ValidationError
from automations.store.db import get_row
from automations.store.models import (
    Appointment,
    Calendar,
    Contact,
    Enrollment,
    EnrollmentLog,
    Message,
    Notification,
    User,
    Workflow,
    WorkflowVersion,
)
from automations.store.states import EnrollmentState, MessageStatus
from web.api.common import now, owned, tx, wake_worker
from web.pages import builder
from web.pages.base import bp, login_required

PER_PAGE = 50
MAX_PAGE = 10_000


def _user_names(s) -> dict[str, str]:
    return {uid: f"{first} {last}".strip() or (email or uid) for uid, first, last, email in s.execute(
        select(User.id, User.first_name, User.last_name, User.email).where(User.location_id == g.location_id))}


def _page() -> int:
    raw = request.args.get("page", "1")
    return max(1, min(int(raw), MAX_PAGE)) if raw.isdigit() else 1


def _date(name: str) -> datetime | None:
    """A ``YYYY-MM-DD`` filter as the start of that day in the viewer's zone (None when empty or malformed)."""
    raw = request.args.get(name, "")
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        return None
    return datetime.combine(day, time(0), tzinfo=g.user.tz)


def _search(query, raw: str):
    text = raw.strip()[:100]
    if not text:
        return query
    like = f"%{text.lower()}%"
    return query.where(or_(func.lower(Contact.first_name + " " + Contact.last_name).like(like),
                           func.lower(Contact.email).like(like), Contact.phone.like(like)))


@bp.get("/workflows/<workflow_id>/enrollments")
@login_required
def enrollment_list(workflow_id: str):
    status = request.args.get("status", "")
    status = status if status in {s.value for s in EnrollmentState} else ""
    contact_q = request.args.get("contact", "")[:100]
    since, until = _date("from"), _date("to")
    page = _page()
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        # Page through enrollments alone (index: workflow_id, created_at, id), then fetch that page's
        # contacts: no join over the whole history, however long it grows.
        query = select(Enrollment).where(Enrollment.workflow_id == wf.id, Enrollment.location_id == g.location_id)
        if status:
            query = query.where(Enrollment.state == status)
        if since:
            query = query.where(Enrollment.created_at >= since)
        if until:
            query = query.where(Enrollment.created_at < until + timedelta(days=1))
        if contact_q.strip():
            matching = _search(select(Contact.id).where(Contact.location_id == g.location_id), contact_q)
            query = query.where(Enrollment.contact_id.in_(matching))
        rows = list(s.scalars(query.order_by(Enrollment.created_at.desc(), Enrollment.id.desc())
                              .offset((page - 1) * PER_PAGE).limit(PER_PAGE)))
        contacts = {c.id: c for c in s.scalars(select(Contact).where(Contact.id.in_({e.contact_id for e in rows})))}
        versions = dict(s.execute(select(WorkflowVersion.id, WorkflowVersion.number).where(
            WorkflowVersion.workflow_id == wf.id)).all())
        # Covered by ix_enrollments_workflow_state; without filters the total is their sum.
        by_state = dict(s.execute(select(Enrollment.state, func.count()).where(Enrollment.workflow_id == wf.id)
                                  .group_by(Enrollment.state)).all())
        filtered = since or until or contact_q.strip()
        total = (s.scalar(query.with_only_columns(func.count(Enrollment.id)).order_by(None)) if filtered
                 else by_state.get(status, 0) if status else sum(by_state.values()))
        items = [{"e": e, "contact": contacts[e.contact_id], "version": versions.get(e.version_id)} for e in rows]
        return render_template("enrollments.html", wf=wf, items=items, total=total, page=page, per_page=PER_PAGE,
                               status=status, contact_q=contact_q, states=[s_.value for s_ in EnrollmentState],
                               by_state=by_state, names=builder.step_names(wf.draft.get("steps", [])), date_from=request.args.get("from", "")[:10],
                               date_to=request.args.get("to", "")[:10])


@bp.get("/enrollments/<enrollment_id>")
@login_required
def enrollment_detail(enrollment_id: str):
    with tx() as s:
        e = owned(s, Enrollment, enrollment_id, "enrollment")
        wf = get_row(s, Workflow, e.workflow_id)
        contact = s.get(Contact, e.contact_id)
        appt = s.get(Appointment, e.appointment_id) if e.appointment_id else None
        log = list(s.scalars(select(EnrollmentLog).where(EnrollmentLog.enrollment_id == e.id)
                             .order_by(EnrollmentLog.at, EnrollmentLog.id)))
        messages = list(s.scalars(select(Message).where(Message.enrollment_id == e.id).order_by(Message.created_at)))
        version = s.get(WorkflowVersion, e.version_id)
        names = builder.step_names((version.document if version else wf.draft).get("steps", []))
        return render_template("enrollment.html", e=e, wf=wf, contact=contact, appt=appt, log=log,
                               messages=messages, version=version, names=names, users=_user_names(s))


def _admin_done(e_id: str, workflow_id: str, message: str):
    flash(message, "success")
    if request.form.get("back") == "list":
        return redirect(url_for("pages.enrollment_list", workflow_id=workflow_id))
    return redirect(url_for("pages.enrollment_detail", enrollment_id=e_id))


@bp.post("/enrollments/<enrollment_id>/remove")
@login_required
def enrollment_remove(enrollment_id: str):
    """Remove the contact from the workflow (``enrollment_admin.remove``, as the API does)."""
    with tx() as s:
        e = owned(s, Enrollment, enrollment_id, "enrollment")
        workflow_id = e.workflow_id
        try:
            enrollment_admin.remove(s, e.id, by=f"user {g.user.email}", now=now())
        except Conflict as exc:
            flash(exc.message, "error")
            return redirect(url_for("pages.enrollment_detail", enrollment_id=enrollment_id))
    return _admin_done(enrollment_id, workflow_id, "Removed from the workflow; unsent messages withdrawn.")


@bp.post("/enrollments/<enrollment_id>/move")
@login_required
def enrollment_move(enrollment_id: str):
    """Move the run to a step of its version (``enrollment_admin.move``, as the API does)."""
    step_id = request.form.get("step_id", "")[:64]
    with tx() as s:
        e = owned(s, Enrollment, enrollment_id, "enrollment")
        workflow_id = e.workflow_id
        try:
            enrollment_admin.move(s, e.id, step_id, by=f"user {g.user.email}", now=now())
        except (Conflict, ValidationError) as exc:
            flash("Step: " + "; ".join((exc.fields or {}).get("step_id", [exc.message])), "error")
            return redirect(url_for("pages.enrollment_detail", enrollment_id=enrollment_id))
    wake_worker()
    return _admin_done(enrollment_id, workflow_id, f"Moved to step {step_id}; it runs now.")


@bp.get("/contacts")
@login_required
def contact_list():
    q = request.args.get("q", "")[:100]
    page = _page()
    with tx() as s:
        query = _search(select(Contact).where(Contact.location_id == g.location_id), q)
        rows = list(s.scalars(query.order_by(Contact.first_name, Contact.last_name, Contact.id)
                              .offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)))
        return render_template("contacts.html", contacts=rows[:PER_PAGE], more=len(rows) > PER_PAGE, page=page, q=q)


@bp.get("/contacts/<contact_id>")
@login_required
def contact_detail(contact_id: str):
    with tx() as s:
        c = owned(s, Contact, contact_id, "contact")
        appts = list(s.scalars(select(Appointment).where(Appointment.contact_id == c.id)
                               .order_by(Appointment.start_at.desc()).limit(100)))
        calendars = dict(s.execute(select(Calendar.id, Calendar.name).where(Calendar.location_id == g.location_id)).all())
        enrollments = s.execute(select(Enrollment, Workflow.name).join(Workflow, Workflow.id == Enrollment.workflow_id)
                                .where(Enrollment.contact_id == c.id).order_by(Enrollment.created_at.desc()).limit(100)).all()
        messages = list(s.scalars(select(Message).where(Message.contact_id == c.id)
                                  .order_by(Message.created_at.desc()).limit(100)))
        return render_template("contact.html", c=c, appts=appts, calendars=calendars, enrollments=enrollments,
                               messages=messages, users=_user_names(s))


def status_history(m: Message) -> list[tuple[str, datetime | None, str]]:
    """queued → sent → delivered / failed, from what the outbox row records (with the provider's error)."""
    steps: list[tuple[str, datetime | None, str]] = [("queued", m.created_at, f"due {m.due_at.isoformat()}" if m.due_at else "")]
    if m.sent_at:
        steps.append(("sent", m.sent_at, f"via {m.provider or 'provider'}" + (f" ({m.provider_id})" if m.provider_id else "")))
    provider_status = ((m.template or {}).get("_delivery") or {}).get("provider_status")
    if m.status in (MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED, MessageStatus.CANCELLED,
                    MessageStatus.PENDING, MessageStatus.SENDING) or provider_status:
        detail = " · ".join(x for x in (m.status_reason, m.error_code and f"error {m.error_code}",
                                          provider_status and f"provider says {provider_status}") if x)
        if m.status != MessageStatus.SENT or detail:
            steps.append((m.status, m.delivered_at if m.status != MessageStatus.PENDING else None, detail))
    return steps


@bp.get("/messages/<message_id>")
@login_required
def message_detail(message_id: str):
    with tx() as s:
        m = owned(s, Message, message_id, "message")
        contact = s.get(Contact, m.contact_id) if m.contact_id else None
        user = s.get(User, m.user_id) if m.user_id else None
        return render_template("message.html", m=m, contact=contact, user=user, history=status_history(m))


@bp.get("/outbox")
@login_required
def outbox():
    channel = request.args.get("channel", "")[:16]
    status = request.args.get("status", "")[:16]
    page = _page()
    with tx() as s:
        query = select(Message).where(Message.location_id == g.location_id)
        if channel:
            query = query.where(Message.channel == channel)
        if status:
            query = query.where(Message.status == status)
        rows = list(s.scalars(query.order_by(Message.created_at.desc(), Message.id.desc())
                              .offset((page - 1) * PER_PAGE).limit(PER_PAGE + 1)))
        contacts = {c.id: c for c in s.scalars(select(Contact).where(Contact.id.in_({m.contact_id for m in rows if m.contact_id})))}
        return render_template("outbox.html", messages=rows[:PER_PAGE], more=len(rows) > PER_PAGE, page=page,
                               contacts=contacts, channel=channel, status=status, users=_user_names(s),
                               statuses=[x.value for x in MessageStatus],
                               channels=["email", "sms", "call", "voicemail", "in_app", "webhook", "slack"])


@bp.get("/notifications")
@login_required
def notifications():
    with tx() as s:
        rows = list(s.scalars(select(Notification).where(Notification.user_id == g.user.id,
                                                         Notification.location_id == g.location_id)
                              .order_by(Notification.created_at.desc()).limit(100)))
        return render_template("notifications.html", rows=rows)


@bp.post("/notifications/read")
@login_required
def notifications_read():
    """Mark one (``id``) or all of the signed-in user's notifications read."""
    one = request.form.get("id")
    with tx() as s:
        if one:
            n = owned(s, Notification, one, "notification")
            if n.user_id != g.user.id:
                abort(404)
            n.read_at = n.read_at or now()
        else:
            for n in s.scalars(select(Notification).where(Notification.user_id == g.user.id,
                                                          Notification.read_at.is_(None))):
                n.read_at = now()
    flash("Marked as read.", "success")
    return redirect(url_for("pages.notifications"))
