"""Calendars in the signed-in app: the list (kind, members, booking page), create / edit / delete a
calendar of each kind with every setting, its members (priority, meeting location), each member's own
hours and date overrides, the member's Google calendar, and a week view of appointments and blocked time.

Forms are read into the same body the JSON API takes and validated by the API's own schema
(``web.api.calendars.CalendarCreate``), then saved by ``automations.booking.calendars`` — the functions
behind ``/api/v1/calendars`` — so a page can never accept what the API refuses.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from automations.booking import availability, calendars
from automations.errors import PunctualError, ValidationError
from automations.google import connections as google_connections
from automations.google.connections import GoogleNotConfigured
from automations.store.db import get_row
from automations.store.models import Appointment, Calendar, Location, User, ZoomConnection
from automations.zoom import connections as zoom_connections
from web.api.calendars import CalendarCreate, CalendarPatch
from web.api.common import load, location, now, owned, tx
from web.integrations.google import google_service
from web.pages import problems
from web.pages.base import admin_required, bp, login_required
from web.pages.settings import TIMEZONES, location_choice

WEEKDAY_NAMES = dict(zip(availability.WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                                                 "Sunday"), strict=True))
KIND_LABELS = {"personal": "Personal (one host)", "round_robin": "Round robin (rotates among free members)",
               "collective": "Collective (every member together)", "class": "Class (many attendees per slot)",
               "unassigned": "Unassigned (no host, static location)"}
#: Form fields holding whole numbers; empty means "not set" (the default, or none for the nullable two).
NUMBERS = ("slot_minutes", "slot_interval_minutes", "buffer_before_minutes", "buffer_after_minutes",
           "min_notice_minutes", "booking_window_days", "appointments_per_slot")
NULLABLE = ("slot_interval_minutes", "booking_window_days")
BLANK_OVERRIDES = 3
VIEW_DAYS = 7


def _users(s) -> list[User]:
    return list(s.scalars(select(User).where(User.location_id == g.location_id).order_by(User.first_name, User.email)))


def weekly_from_form(form, prefix: str = "availability") -> dict[str, list[list[str]]]:
    """A row per weekday (``availability.mon.from`` / ``.to``): both empty is closed, one alone is an error."""
    out: dict[str, list[list[str]]] = {}
    errors: dict[str, list[str]] = {}
    for day in availability.WEEKDAYS:
        start = form.get(f"{prefix}.{day}.from", "").strip()
        end = form.get(f"{prefix}.{day}.to", "").strip()
        if start and end:
            out[day] = [[start, end]]
        elif start or end:
            errors[f"{prefix}.{day}"] = ["enter both a from and a to time, or leave both empty for closed"]
    if errors:
        raise ValidationError("invalid hours", fields=errors)
    try:
        return availability.parse_weekly(out, prefix)
    except ValidationError as exc:  # availability.mon[0][1] → the row's field
        raise ValidationError(exc.message, fields={k.split("[", 1)[0]: v for k, v in (exc.fields or {}).items()}) from None


def _row_count(form) -> int:
    """How many override rows the form sent (bounded: the count is client input)."""
    raw = str(form.get("override_rows", ""))[:6]
    return min(int(raw), availability.MAX_OVERRIDES) if raw.isdigit() else 0


def overrides_from_form(form) -> dict[str, list[list[str]]]:
    """Rows of date + from/to, or date + "day off"; a row without a date is ignored."""
    out: dict[str, list[list[str]]] = {}
    errors: dict[str, list[str]] = {}
    for i in range(_row_count(form)):
        day = form.get(f"ov-{i}-date", "").strip()
        if not day:
            continue
        start, end = form.get(f"ov-{i}-from", "").strip(), form.get(f"ov-{i}-to", "").strip()
        if form.get(f"ov-{i}-off"):
            out[day] = []
        elif start and end:
            out.setdefault(day, []).append([start, end])
        else:
            errors[f"ov-{i}"] = [f"{day}: enter from and to times, or tick day off"]
    if errors:
        raise ValidationError("invalid date overrides", fields=errors)
    try:
        return availability.parse_overrides(out, "date_overrides")
    except ValidationError as exc:
        raise ValidationError(exc.message, fields={"date_overrides": [
            f"{k.removeprefix('date_overrides.')}: {'; '.join(v)}" for k, v in (exc.fields or {}).items()]}) from None


def _body(form, users: list[User], existing: dict[str, dict] | None) -> dict:
    """The API's request body from the calendar form (members keep their own hours on an edit)."""
    data: dict = {key: form.get(key, "") for key in ("name", "kind", "title_template", "description")}
    data["timezone"] = form.get("timezone", "").strip() or None
    data["meeting_location"] = form.get("meeting_location", "").strip() or None
    data["auto_confirm"] = form.get("auto_confirm") == "on"
    for key in NUMBERS:
        value = form.get(key, "").strip()
        if value:
            data[key] = value
        elif key in NULLABLE:
            data[key] = None
    data["title_template"] = data["title_template"].strip() or None
    data["availability"] = weekly_from_form(form)
    members = []
    for user in users:
        if form.get(f"member-{user.id}") != "on":
            continue
        item = {"user_id": user.id, "priority": form.get(f"m-{user.id}-priority", "").strip() or 0,
                "meeting_location": location_choice(form, f"m-{user.id}-")}
        kept = (existing or {}).get(user.id)
        if kept:
            item["availability"], item["date_overrides"] = kept["availability"], kept["date_overrides"]
        members.append(item)
    data["members"] = members
    return data


def _check_zoom(s, cal: Calendar, before: dict[str, dict]) -> None:
    """Zoom for a member only once that user connected Zoom (the meeting-location rule), checked for the
    members whose location became Zoom on this save."""
    acting = s.get(User, g.user.id)
    for i, member in enumerate(cal.members):
        if member.meeting_location == calendars.ZOOM and (before.get(member.user_id) or {}).get("meeting_location") != "zoom":
            try:
                zoom_connections.set_member_location(s, cal, s.get(User, member.user_id), "zoom", now=now(),
                                                     acting_user=acting)
            except PunctualError as exc:
                raise ValidationError(exc.message, fields={f"members[{i}]": [exc.message]}) from None


def _snapshot(cal: Calendar) -> dict[str, dict]:
    return {m.user_id: {"availability": m.availability, "date_overrides": m.date_overrides,
                        "meeting_location": m.meeting_location, "google_calendar_id": m.google_calendar_id}
            for m in cal.members}


def _form_values(cal: Calendar | None) -> dict:
    if cal is None:
        return {"kind": "round_robin", "slot_minutes": 30, "appointments_per_slot": 1, "auto_confirm": "on",
                "buffer_before_minutes": 0, "buffer_after_minutes": 0, "min_notice_minutes": 0}
    values = {key: getattr(cal, key) for key in ("name", "kind", "timezone", "title_template", "description",
                                                 "meeting_location", *NUMBERS)}
    values = {k: ("" if v is None else v) for k, v in values.items()}
    values["auto_confirm"] = "on" if cal.auto_confirm else ""
    for day, ranges in (cal.availability or {}).items():
        if ranges:
            values[f"availability.{day}.from"], values[f"availability.{day}.to"] = ranges[0]
    for m in cal.members:
        values[f"member-{m.user_id}"] = "on"
        values[f"m-{m.user_id}-priority"] = m.priority or 0
        values[f"m-{m.user_id}-loc"] = m.meeting_location
    return values


def _render_form(s, cal: Calendar | None, form, summary, by_field, status: int):
    users = _users(s)
    zoom = {c.user_id: c.status for c in s.scalars(select(ZoomConnection).where(
        ZoomConnection.location_id == g.location_id))}
    return render_template("calendars/form.html", cal=cal, form=form, users=users, zoom=zoom, kinds=KIND_LABELS,
                           weekdays=WEEKDAY_NAMES, problems=summary, errors=by_field, field_id=problems.field_id,
                           location_tz=location(s).timezone, timezones=TIMEZONES, loc_slug=calendars.location_slug(location(s))), status


def _save(s, cal: Calendar | None):
    """Create or update from the posted form; (calendar, None) or (None, the error)."""
    users = _users(s)
    before = _snapshot(cal) if cal is not None else {}
    try:
        with s.begin_nested():
            body = _body(request.form, users, before)
            if cal is None:
                cal = calendars.create(s, location(s), load(CalendarCreate(), body), now=now())
            else:
                cal = calendars.update(s, cal, load(CalendarPatch(), body), now=now())
            _check_zoom(s, cal, before)
            for member in cal.members:  # a member kept on the calendar keeps its Google calendar
                linked = (before.get(member.user_id) or {}).get("google_calendar_id")
                if linked:
                    google_connections.link_member_calendar(s, cal, member.user_id, linked, choices=None, now=now())
        return cal, None
    except PunctualError as exc:
        s.expire_all()
        return None, exc


@bp.get("/calendars")
@login_required
def calendar_list():
    with tx() as s:
        loc = location(s)
        cals = list(s.scalars(select(Calendar).where(Calendar.location_id == g.location_id).order_by(Calendar.name)))
        users = {u.id: u for u in _users(s)}
        return render_template("calendars/list.html", calendars=cals, users=users, kinds=KIND_LABELS,
                               loc_slug=calendars.location_slug(loc))


@bp.route("/calendars/new", methods=["GET", "POST"])
@admin_required
def calendar_new():
    with tx() as s:
        if request.method == "POST":
            cal, exc = _save(s, None)
            if exc is None:
                flash(f"Calendar {cal.name} created. Set each member's hours below.", "success")
                return redirect(url_for("pages.calendar_edit", calendar_id=cal.id))
            summary, by_field = problems.for_form(problems.from_error(exc))
            return _render_form(s, None, request.form, summary, by_field, 422)
        return _render_form(s, None, _form_values(None), [], {}, 200)


@bp.route("/calendars/<calendar_id>", methods=["GET", "POST"])
@login_required
def calendar_edit(calendar_id: str):
    with tx() as s:
        cal = owned(s, Calendar, calendar_id, "calendar")
        if request.method == "POST":
            if not g.user.is_admin:
                return redirect(url_for("pages.calendar_edit", calendar_id=cal.id))
            saved, exc = _save(s, cal)
            if exc is None:
                flash(f"Calendar {saved.name} saved.", "success")
                return redirect(url_for("pages.calendar_edit", calendar_id=saved.id))
            summary, by_field = problems.for_form(problems.from_error(exc))
            return _render_form(s, owned(s, Calendar, calendar_id, "calendar"), request.form, summary, by_field, 422)
        return _render_form(s, cal, _form_values(cal), [], {}, 200)


@bp.post("/calendars/<calendar_id>/delete")
@admin_required
def calendar_delete(calendar_id: str):
    with tx() as s:
        cal = owned(s, Calendar, calendar_id, "calendar")
        name = cal.name
        try:
            with s.begin_nested():
                calendars.delete(s, cal)
        except PunctualError as exc:
            flash(f"{name} was not deleted: {exc.message}", "error")
            return redirect(url_for("pages.calendar_edit", calendar_id=calendar_id))
    flash(f"Calendar {name} deleted.", "success")
    return redirect(url_for("pages.calendar_list"))


# -- a member's hours, date overrides and Google calendar ----------------------------------------------------


def _member_form(member) -> dict:
    values: dict = {}
    for day, ranges in (member.availability or {}).items():
        if ranges:
            values[f"availability.{day}.from"], values[f"availability.{day}.to"] = ranges[0]
    return values


def _override_rows(form, overrides: dict | None) -> list[dict]:
    if form is not None:
        return [{"date": form.get(f"ov-{i}-date", ""), "from": form.get(f"ov-{i}-from", ""),
                 "to": form.get(f"ov-{i}-to", ""), "off": bool(form.get(f"ov-{i}-off"))} for i in range(_row_count(form))]
    rows = []
    for day, ranges in sorted((overrides or {}).items()):
        if not ranges:
            rows.append({"date": day, "from": "", "to": "", "off": True})
        for start, end in ranges:
            rows.append({"date": day, "from": start, "to": end, "off": False})
    return rows + [{"date": "", "from": "", "to": "", "off": False} for _ in range(BLANK_OVERRIDES)]


def _google_choices(user_id: str, connected: bool) -> tuple[list, str]:
    if not connected:
        return [], ""
    try:
        return google_service().list_calendars(user_id, now=now()), ""
    except GoogleNotConfigured as exc:
        return [], exc.message
    except PunctualError as exc:
        return [], f"Could not fetch the Google calendars: {exc.message}"


@bp.route("/calendars/<calendar_id>/members/<user_id>", methods=["GET", "POST"])
@login_required
def calendar_member(calendar_id: str, user_id: str):
    summary: list[problems.Problem] = []
    by_field: dict[str, list[str]] = {}
    status, form = 200, None
    # Google is asked outside the page's transaction (a token refresh writes in its own).
    with tx() as s:
        owned(s, Calendar, calendar_id, "calendar")
        google = google_connections.connection_for(s, owned(s, User, user_id, "user").id)
        connected = google is not None and google.status == "active"
    choices, google_problem = _google_choices(user_id, connected)
    with tx() as s:
        cal = owned(s, Calendar, calendar_id, "calendar")
        user = owned(s, User, user_id, "user")
        member = next((m for m in cal.members if m.user_id == user.id), None)
        if member is None:
            return redirect(url_for("pages.calendar_edit", calendar_id=cal.id))
        may_edit = g.user.is_admin or g.user.id == user.id
        if request.method == "POST" and may_edit:
            form = request.form
            errors: dict[str, list[str]] = {}
            weekly = overrides = None
            try:
                weekly = weekly_from_form(form) or None  # every day empty: the calendar's hours
            except ValidationError as exc:
                errors.update(exc.fields or {})
            try:
                overrides = overrides_from_form(form)
            except ValidationError as exc:
                errors.update(exc.fields or {})
            if not errors:
                try:
                    with s.begin_nested():
                        calendars.set_member_availability(s, cal, user.id, weekly=weekly, overrides=overrides or None)
                except PunctualError as exc:
                    errors.update(exc.fields or {"$": [exc.message]})
            if not errors:
                flash(f"Hours for {user.name} on {cal.name} saved.", "success")
                return redirect(url_for("pages.calendar_member", calendar_id=cal.id, user_id=user.id))
            summary, by_field = problems.for_form(problems.from_error(ValidationError("invalid hours", fields=errors)))
            status = 422
        google = google_connections.connection_for(s, user.id)
        zone = user.timezone or location(s).timezone
        values = form if form is not None else _member_form(member)
        return render_template("calendars/member.html", cal=cal, user=user, member=member, form=values,
                               overrides=_override_rows(form, member.date_overrides), weekdays=WEEKDAY_NAMES,
                               zone=zone, google=google, choices=choices, google_problem=google_problem,
                               may_edit=may_edit, problems=summary, errors=by_field, field_id=problems.field_id), status


@bp.post("/calendars/<calendar_id>/members/<user_id>/google")
@login_required
def calendar_member_google(calendar_id: str, user_id: str):
    wanted = request.form.get("google_calendar_id", "").strip() or None
    with tx() as s:
        cal = owned(s, Calendar, calendar_id, "calendar")
        user = owned(s, User, user_id, "user")
        if not (g.user.is_admin or g.user.id == user.id):
            flash("Only an admin or the member can change this.", "error")
            return redirect(url_for("pages.calendar_member", calendar_id=cal.id, user_id=user.id))
    back = redirect(url_for("pages.calendar_member", calendar_id=calendar_id, user_id=user_id))
    try:
        choices = google_service().list_calendars(user_id, now=now()) if wanted else None
        with tx() as s:
            google_connections.link_member_calendar(s, owned(s, Calendar, calendar_id, "calendar"), user_id, wanted,
                                                    choices=choices, now=now())
    except PunctualError as exc:
        flash(f"Google calendar: {exc.message}", "error")
        return back
    flash("Google calendar linked: appointments are written there and its busy times block bookings." if wanted
          else "Google calendar unlinked.", "success")
    return back


# -- the week view ------------------------------------------------------------------------------------------


@bp.get("/calendars/<calendar_id>/view")
@login_required
def calendar_view(calendar_id: str):
    with tx() as s:
        cal = owned(s, Calendar, calendar_id, "calendar")
        zone = g.user.tz
        at = now()
        first = at.astimezone(zone).date()
        start = datetime.combine(first, datetime.min.time(), tzinfo=zone)
        end = start + timedelta(days=VIEW_DAYS)
        appts = list(s.scalars(select(Appointment).where(
            Appointment.calendar_id == cal.id, Appointment.start_at < end, Appointment.end_at > start,
            Appointment.status.not_in(availability.INACTIVE)).order_by(Appointment.start_at).limit(1000)))
        member_ids = [m.user_id for m in cal.members]
        blocks = availability.busy_times(s, member_ids, start, end)
        names = {u.id: u.name for u in _users(s)}
        days = _days(first, zone, appts, blocks, names)
        return render_template("calendars/view.html", cal=cal, days=days, zone=zone.key,
                               loc_slug=calendars.location_slug(get_row(s, Location, g.location_id)))


def _days(first: date, zone: ZoneInfo, appts: list[Appointment], blocks, names: dict[str, str]) -> list[dict]:
    days: list[dict[str, Any]] = [{"date": first + timedelta(days=i), "items": []} for i in range(VIEW_DAYS)]
    for a in appts:
        i = (a.start_at.astimezone(zone).date() - first).days
        if 0 <= i < VIEW_DAYS:
            days[i]["items"].append({"kind": "appointment", "start": a.start_at, "end": a.end_at, "title": a.title or "Appointment",
                                     "status": a.status, "who": names.get(a.assigned_user_id or "", ""), "contact_id": a.contact_id})
    for b in blocks:
        i = (b.start_at.astimezone(zone).date() - first).days
        if 0 <= i < VIEW_DAYS:
            days[i]["items"].append({"kind": "busy", "start": b.start_at, "end": b.end_at, "title": b.title or "Busy",
                                     "status": "blocked", "who": names.get(b.user_id, ""), "contact_id": None})
    for day in days:
        day["items"].sort(key=lambda item: item["start"])
    return days
