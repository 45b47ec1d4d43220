"""Public booking pages under ``/book/`` (no account): a calendar's free slots in the visitor's time
zone, the booking form, and the confirmation page that doubles as the contact's manage page (signed
link: cancel, reschedule, ``.ics``, add to Google Calendar).

Server-rendered (``web/templates/booking/``); ``web/static/booking.js`` only picks the visitor's time
zone. Every form carries a signed token (``forms.form_token``). Double booking is prevented below
this layer: ``appointments.book`` locks the calendar and hosts (PostgreSQL) or runs under ``BEGIN
IMMEDIATE`` (SQLite) before it checks, so a slot taken a moment ago comes back as a ``Conflict`` and
the visitor is asked to pick another time.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo, available_timezones

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from automations.booking import availability, booking_links, calendars, meetings, public
from automations.errors import Conflict, NotFound, ValidationError
from automations.rendering.render_context import google_calendar_url
from automations.rendering.timecalc import parse_tz
from automations.store.db import take_writer, transaction
from automations.store.models import Appointment, Calendar, Contact, Location, Meeting
from automations.store.states import AppointmentStatus
from web.booking import forms, ics

bp = Blueprint("booking", __name__, url_prefix="/book")
DAYS_SHOWN = 7
MAX_WEEKS_AHEAD = 26
_ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/")))
TAKEN = "Sorry, that time was just taken. Please pick another time."


def _state():
    return current_app.extensions["punctual"]


def _secret() -> str:
    return _state().settings.secret_key


def _tx(*, post_decides_on_reads: bool = False) -> AbstractContextManager[Session]:
    """The page's one transaction. It reads first (``store.db.transaction(read_first=True)``): a visitor
    browsing, or a refused form, never takes SQLite's writer, and booking takes it (``take_writer``)
    before it reads the slot. A POST that decides on what it reads (cancel, reschedule: the appointment's
    state) takes the writer from the start."""
    return transaction(_state().factory, read_first=not (post_decides_on_reads and request.method == "POST"))


def _zone(name: str | None, fallback: str) -> ZoneInfo:
    try:
        return parse_tz(name, "tz") if name else parse_tz(fallback, "tz")
    except ValidationError:
        return parse_tz(fallback, "tz")


def _week() -> int:
    raw = request.args.get("week", "0")
    return min(int(raw), MAX_WEEKS_AHEAD) if raw.isdigit() else 0


def _slot_days(session, cal: Calendar, zone: ZoneInfo, week: int, now: datetime) -> list[tuple]:
    start = now + timedelta(days=DAYS_SHOWN * week)
    found = availability.slots(session, cal, start=start, end=start + timedelta(days=DAYS_SHOWN), now=now)
    local = [(s.start.astimezone(zone), s) for s in found]
    return [(day, [x for x in items]) for day, items in groupby(local, key=lambda pair: pair[0].date())]


def _render_page(session, loc: Location, cal: Calendar, *, zone: ZoneInfo, week: int, message: str | None = None,
                 appointment_token: str | None = None, status: int = 200) -> ResponseReturnValue:
    now = _state().clock.now()
    days = _slot_days(session, cal, zone, week, now)
    return render_template(
        "booking/page.html", location=loc, calendar=cal, days=days, zone=zone.key, zones=_ZONES, week=week,
        max_week=MAX_WEEKS_AHEAD, message=message, loc_slug=calendars.location_slug(loc),
        appointment_token=appointment_token,
        form_token=forms.form_token(_secret(), booking_links.appointment_id(_secret(), appointment_token)
                                    if appointment_token else cal.id),
    ), status


@bp.get("/<loc_slug>/<cal_slug>")
def page(loc_slug: str, cal_slug: str) -> ResponseReturnValue:
    with _tx() as s:
        loc, cal = _calendar(s, loc_slug, cal_slug)
        return _render_page(s, loc, cal, zone=_zone(request.args.get("tz"), cal.timezone or loc.timezone),
                            week=_week())


def _calendar(session, loc_slug: str, cal_slug: str) -> tuple[Location, Calendar]:
    try:
        return calendars.by_slug(session, loc_slug, cal_slug)
    except NotFound:
        abort(404)


def _form_page(loc: Location, cal: Calendar, start: datetime, zone: ZoneInfo, form: forms.BookingForm,
               status: int = 200) -> ResponseReturnValue:
    return render_template(
        "booking/form.html", location=loc, calendar=cal, start=start, local_start=start.astimezone(zone),
        zone=zone.key, form=form, loc_slug=calendars.location_slug(loc),
        form_token=forms.form_token(_secret(), cal.id),
    ), status


@bp.get("/<loc_slug>/<cal_slug>/book")
def booking_form(loc_slug: str, cal_slug: str) -> ResponseReturnValue:
    start = forms.parse_start(request.args.get("start"))
    with _tx() as s:
        loc, cal = _calendar(s, loc_slug, cal_slug)
        zone = _zone(request.args.get("tz"), cal.timezone or loc.timezone)
        if start is None:
            return redirect(url_for("booking.page", loc_slug=loc_slug, cal_slug=cal_slug, tz=zone.key))
        return _form_page(loc, cal, start, zone, forms.BookingForm())


@bp.post("/<loc_slug>/<cal_slug>/book")
def submit(loc_slug: str, cal_slug: str) -> ResponseReturnValue:
    start = forms.parse_start(request.form.get("start"))
    form = forms.BookingForm.read(request.form)
    message, status = None, 200
    # One short transaction books; every page shown after a refusal is rendered outside it, so a
    # visitor who lost the race never holds the write lock others are waiting for.
    with _tx() as s:  # a refused form never takes the writer
        loc, cal = _calendar(s, loc_slug, cal_slug)
        zone = _zone(request.form.get("tz"), cal.timezone or loc.timezone)
        if not forms.check_token(_secret(), request.form.get("form_token"), cal.id):
            message, status = "This form has expired. Please pick a time again.", 400
        elif start is None:
            message, status = "Please pick a time.", 400
        elif form.errors:
            return _form_page(loc, cal, start, zone, form, status=422)
        else:
            now = _state().clock.now()
            first, last = form.first_last
            take_writer(s)  # from here the slot and the contact are read as the writer sees them
            try:
                with s.begin_nested():
                    contact = public.find_or_create_contact(s, loc, first_name=first, last_name=last,
                                                            email=form.email, phone=form.phone_e164,
                                                            timezone=zone.key, now=now)
                    appt = public.book(s, loc, cal, contact, start_at=start, notes=form.notes, now=now)
                token = booking_links.token(_secret(), appt.id)
            except (Conflict, ValidationError):
                message, status = TAKEN, 409
    if message:
        with _tx() as s:
            loc, cal = _calendar(s, loc_slug, cal_slug)
            return _render_page(s, loc, cal, zone=zone, week=0, status=status, message=message)
    _wake()
    return redirect(url_for("booking.manage", token=token, tz=zone.key, booked=1), code=303)


def _wake() -> None:
    wake = getattr(_state().runtime, "wake", None)
    if callable(wake):
        wake()


def _appointment(session, token: str) -> tuple[Appointment, Location, Calendar]:
    appt_id = booking_links.appointment_id(_secret(), token)
    appt = session.get(Appointment, appt_id) if appt_id else None
    if appt is None:
        abort(404)
    return appt, session.get(Location, appt.location_id), session.get(Calendar, appt.calendar_id)


def _appt_zone(session, appt: Appointment) -> ZoneInfo:
    """The zone a contact reads their appointment in: asked for, else their own, else the appointment's."""
    contact = session.get(Contact, appt.contact_id)
    return _zone(request.values.get("tz") or (contact.timezone if contact else None), appt.timezone)


def _expired(appt: Appointment) -> bool:
    return not booking_links.usable(appt.end_at, _state().clock.now())


@bp.get("/a/<token>")
def manage(token: str) -> ResponseReturnValue:
    with _tx() as s:
        appt, loc, cal = _appointment(s, token)
        zone = _appt_zone(s, appt)
        meeting = s.get(Meeting, appt.meeting_id) if appt.meeting_id else None
        where = meetings.current_location(appt, meeting, cal)
        start, end = appt.start_at.astimezone(zone), appt.end_at.astimezone(zone)
        return render_template(
            "booking/appointment.html", appointment=appt, calendar=cal, location=loc, token=token, zone=zone.key,
            start=start, end=end, meeting_location=where, link_pending=where is None,
            cancelled=appt.status in (AppointmentStatus.CANCELLED, AppointmentStatus.INVALID),
            expired=_expired(appt), booked=request.args.get("booked") == "1",
            google_url=google_calendar_url(title=appt.title, start=start, end=end, details=appt.notes or "",
                                           location=where or ""),
        )


@bp.get("/a/<token>/event.ics")
def download_ics(token: str) -> ResponseReturnValue:
    with _tx() as s:
        appt, _loc, cal = _appointment(s, token)
        meeting = s.get(Meeting, appt.meeting_id) if appt.meeting_id else None
        where = meetings.current_location(appt, meeting, cal) or ""
        body = ics.event(uid=f"{appt.id}@punctual", start=appt.start_at, end=appt.end_at, title=appt.title,
                         description="\n".join(x for x in (appt.notes or "", where) if x), location=where,
                         cancelled=appt.status == AppointmentStatus.CANCELLED, now=_state().clock.now())
    return Response(body, mimetype="text/calendar",
                    headers={"Content-Disposition": 'attachment; filename="appointment.ics"'})


@bp.route("/a/<token>/cancel", methods=["GET", "POST"])
def cancel(token: str) -> ResponseReturnValue:
    with _tx(post_decides_on_reads=True) as s:
        appt, loc, cal = _appointment(s, token)
        zone = _appt_zone(s, appt)
        done = appt.status == AppointmentStatus.CANCELLED
        problem = "This link has expired: the appointment is over." if _expired(appt) and not done else None
        if request.method == "POST" and not done and not problem:
            if not forms.check_token(_secret(), request.form.get("form_token"), appt.id):
                problem = "This form has expired. Please try again."
            else:
                public.cancel(s, appt, now=_state().clock.now())
                done = True
        page = render_template(
            "booking/cancel.html", appointment=appt, calendar=cal, location=loc, token=token, zone=zone.key,
            start=appt.start_at.astimezone(zone), done=done, problem=problem,
            form_token=forms.form_token(_secret(), appt.id))
    if request.method == "POST" and done:
        _wake()
    return page, 200 if not problem else 410 if _expired(appt) else 400


@bp.route("/a/<token>/reschedule", methods=["GET", "POST"])
def reschedule(token: str) -> ResponseReturnValue:
    with _tx(post_decides_on_reads=True) as s:
        appt, loc, cal = _appointment(s, token)
        zone = _appt_zone(s, appt)
        if _expired(appt) or appt.status in (AppointmentStatus.CANCELLED, AppointmentStatus.INVALID):
            return render_template("booking/cancel.html", appointment=appt, calendar=cal, location=loc, token=token,
                                   zone=zone.key, start=appt.start_at.astimezone(zone), done=False,
                                   problem="This appointment can no longer be rescheduled.", form_token=""), 410
        if request.method == "GET":
            return _render_page(s, loc, cal, zone=zone, week=_week(), appointment_token=token)
        start = forms.parse_start(request.form.get("start"))
        if start is None or not forms.check_token(_secret(), request.form.get("form_token"), appt.id):
            return _render_page(s, loc, cal, zone=zone, week=0, appointment_token=token, status=400,
                                message="Please pick a time again.")
        try:
            with s.begin_nested():
                public.reschedule(s, appt, start_at=start, now=_state().clock.now())
        except (Conflict, ValidationError):
            return _render_page(s, loc, cal, zone=zone, week=0, appointment_token=token, status=409, message=TAKEN)
    _wake()
    return redirect(url_for("booking.manage", token=token, tz=zone.key), code=303)
