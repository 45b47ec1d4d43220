"""The builder's tools as pages: the send-time simulator tab, and a message step's preview and test send.

They call the same domain functions as ``POST /api/v1/workflows/{id}/simulate``, ``…/preview`` and
``…/test-send`` (``automations.engine.simulate`` and ``automations.engine.preview``); the forms are plain
GETs (simulate, preview: nothing changes) and a CSRF-protected POST (test send).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, current_app, render_template, request
from sqlalchemy import select

from automations.engine import preview as previews
from automations.engine.simulate import simulate
from automations.errors import ValidationError
from automations.rendering import render_context
from automations.store.db import get_row
from automations.store.models import Appointment, Calendar, Contact, Location, Workflow
from web.api.common import now, owned, tx, wake_worker
from web.pages import builder, problems
from web.pages.base import bp, login_required

#: How many contacts and appointments the pickers offer (most recent first).
PICK_LIMIT = 200
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def _local(raw: str, zone: ZoneInfo, name: str) -> datetime:
    try:
        return datetime.strptime(raw[:16], LOCAL_FORMAT).replace(tzinfo=zone)
    except ValueError:
        raise ValidationError.single(name, "must be a date and time (YYYY-MM-DDTHH:MM)") from None


@bp.get("/workflows/<workflow_id>/simulate")
@login_required
def workflow_simulate(workflow_id: str):
    args = request.args
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        location = get_row(s, Location, wf.location_id)
        calendars = list(s.scalars(select(Calendar).where(Calendar.location_id == wf.location_id).order_by(Calendar.name)))
        zone_name = args.get("contact_timezone", "")[:64] or location.timezone or "UTC"
        zone = render_context.resolve_timezone(zone_name)
        today = now().astimezone(zone).replace(second=0, microsecond=0)
        form: dict[str, Any] = {"calendar_id": args.get("calendar_id", calendars[0].id if calendars else ""),
                "start_time": args.get("start_time", "")[:16] or (today + timedelta(days=3)).strftime(LOCAL_FORMAT),
                "booked_at": args.get("booked_at", "")[:16] or today.strftime(LOCAL_FORMAT),
                "contact_timezone": zone_name, "sms": bool(args.get("sms")), "email": bool(args.get("email"))}
        timeline, found = None, []
        if args.get("run"):
            try:
                timeline = simulate(s, location_id=wf.location_id, document_or_workflow=wf,
                                    calendar_id=form["calendar_id"],
                                    start_time=_local(form["start_time"], zone, "start_time"),
                                    booked_at=_local(form["booked_at"], zone, "booked_at"),
                                    contact_timezone=zone_name,
                                    contact_opted_out={k: True for k in ("sms", "email") if form[k]})
            except ValidationError as exc:
                found = problems.from_error(exc)
        summary, by_field = problems.for_form(found)
        return render_template("simulate.html", wf=wf, calendars=calendars, form=form, timeline=timeline,
                               names=builder.step_names(wf.draft.get("steps", [])), problems=summary,
                               errors=by_field, field_id=problems.field_id), 422 if found else 200


def _pickers(s, location_id: str) -> tuple[list[Contact], list[tuple[Appointment, Contact]]]:
    contacts = list(s.scalars(select(Contact).where(Contact.location_id == location_id)
                              .order_by(Contact.created_at.desc()).limit(PICK_LIMIT)))
    appointments = list(s.execute(select(Appointment, Contact).join(Contact, Contact.id == Appointment.contact_id)
                                  .where(Appointment.location_id == location_id)
                                  .order_by(Appointment.start_at.desc()).limit(PICK_LIMIT)).all())
    return contacts, appointments


def _step(wf: Workflow, step_id: str) -> dict:
    step = next((st for st in wf.draft.get("steps", []) if st.get("id") == step_id), None)
    if step is None or step.get("type") not in builder.MESSAGE_STEPS:
        abort(404)
    return step


def _render_preview(s, wf: Workflow, step: dict, *, contact_id: str, appointment_id: str | None,
                    result=None, sent=(), found=(), status=200):
    contacts, appointments = _pickers(s, wf.location_id)
    summary, by_field = problems.for_form(list(found))
    return render_template("step_preview.html", wf=wf, step=step, type_label=builder.type_label(step["type"]),
                           contacts=contacts, appointments=appointments, contact_id=contact_id,
                           appointment_id=appointment_id or "", result=result, sent=list(sent),
                           problems=summary, errors=by_field, field_id=problems.field_id), status


def _ids(values) -> tuple[str, str | None]:
    return values.get("contact_id", "")[:64], values.get("appointment_id", "")[:64] or None


@bp.get("/workflows/<workflow_id>/steps/<step_id>/preview")
@login_required
def step_preview(workflow_id: str, step_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        step = _step(wf, step_id)
        contact_id, appointment_id = _ids(request.args)
        result, found = None, []
        if contact_id:
            try:
                result = previews.preview(s, wf, step_id=step_id, contact_id=contact_id,
                                          appointment_id=appointment_id, now=now(),
                                          providers=current_app.extensions["punctual"].providers)
            except ValidationError as exc:
                found = problems.from_error(exc)
        return _render_preview(s, wf, step, contact_id=contact_id, appointment_id=appointment_id, result=result,
                               found=found, status=422 if found else 200)


@bp.post("/workflows/<workflow_id>/steps/<step_id>/test-send")
@login_required
def step_test_send(workflow_id: str, step_id: str):
    contact_id, appointment_id = _ids(request.form)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        step = _step(wf, step_id)
        try:
            sent = previews.send_test(s, wf, step_id=step_id, contact_id=contact_id, appointment_id=appointment_id,
                                      now=now())
        except ValidationError as exc:
            return _render_preview(s, wf, step, contact_id=contact_id, appointment_id=appointment_id,
                                   found=problems.from_error(exc), status=422)
        page = _render_preview(s, wf, step, contact_id=contact_id, appointment_id=appointment_id, sent=sent)
    wake_worker()
    return page
