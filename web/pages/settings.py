"""Settings: the location (name, time zone, sender defaults), users (create, role), API keys (create, shown
once; revoke), calendars' meeting locations, and My profile → Integrations → Zoom (connect, status,
disconnect with "also delete future meetings"; the default meeting location with "apply to all my
calendars"), and Integrations → Google Calendar (connect, status, disconnect). Zoom and meeting locations go
through ``automations.zoom.connections``, Google through ``automations.google.connections``, like the API."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import flash, g, redirect, render_template, request, session, url_for
from sqlalchemy import select

from automations.booking import accounts, locations
from automations.errors import PunctualError
from automations.google import connections as google_connections
from automations.google.connections import GoogleNotConfigured
from automations.store.models import Calendar, CalendarMember, User, ZoomConnection
from automations.zoom import connections as zoom_connections
from automations.zoom.connections import ZoomNotConfigured
from web.api.common import location, now, owned, tx
from web.integrations.google import google_service
from web.integrations.zoom import zoom_service
from web.pages import problems
from web.pages.base import admin_required, bp, error_page, login_required

TIMEZONES = sorted(available_timezones())


def _errors(exc: PunctualError) -> tuple[list[problems.Problem], dict[str, list[str]]]:
    return problems.for_form(problems.from_error(exc))


@bp.route("/settings", methods=["GET", "POST"])
@login_required
def settings_home():
    summary, by_field, status = [], {}, 200
    with tx() as s:
        loc = location(s)
        if request.method == "POST":
            if not g.user.is_admin:
                return error_page(403, "Only a location admin can change this", "Ask an admin of your location.")
            try:
                accounts.update_location(loc, name=request.form.get("name", ""), timezone=request.form.get("timezone", ""),
                                         email=request.form.get("email"), phone=request.form.get("phone"))
            except PunctualError as exc:
                summary, by_field = _errors(exc)
                status = 422  # nothing was changed: every field is checked before any is set
            else:
                flash("Location settings saved.", "success")
                return redirect(url_for("pages.settings_home"))
        form = request.form if status != 200 else {"name": loc.name, "timezone": loc.timezone, "email": loc.email or "",
                                                   "phone": loc.phone or ""}
        return render_template("settings_location.html", form=form, timezones=TIMEZONES, problems=summary,
                               errors=by_field, field_id=problems.field_id), status


@bp.route("/settings/users", methods=["GET", "POST"])
@admin_required
def settings_users():
    summary, by_field, status, created = [], {}, 200, None
    with tx() as s:
        if request.method == "POST":
            try:
                with s.begin_nested():
                    user = accounts.create_user(
                        s, location(s), email=request.form.get("email", ""), first_name=request.form.get("first_name", ""),
                        last_name=request.form.get("last_name", ""), role=request.form.get("role", "user"),
                        password=request.form.get("password", ""), now=now())
                created = user.email
            except PunctualError as exc:
                summary, by_field = _errors(exc)
                status = 422
        users = list(s.scalars(select(User).where(User.location_id == g.location_id).order_by(User.created_at)))
        if created:
            flash(f"{created} can now sign in with the password you chose. Share it with them privately.", "success")
            return redirect(url_for("pages.settings_users"))
        return render_template("settings_users.html", users=users, problems=summary, errors=by_field,
                               form=request.form, field_id=problems.field_id, roles=accounts.ROLES), status


@bp.post("/settings/users/<user_id>/role")
@admin_required
def settings_user_role(user_id: str):
    with tx() as s:
        user = owned(s, User, user_id, "user")
        if user.id == g.user.id:
            flash("You cannot change your own role.", "error")
            return redirect(url_for("pages.settings_users"))
        try:
            accounts.set_role(user, request.form.get("role", ""))
        except PunctualError as exc:
            flash(exc.message, "error")
            return redirect(url_for("pages.settings_users"))
    flash("Role changed.", "success")
    return redirect(url_for("pages.settings_users"))


@bp.route("/settings/api-keys", methods=["GET", "POST"])
@admin_required
def settings_api_keys():
    new_key = None
    with tx() as s:
        if request.method == "POST":
            name = (request.form.get("name", "").strip() or "default")[:100]
            _, new_key = locations.issue(s, location(s), now=now(), name=name)
            s.flush()
        keys = locations.keys(s, g.location_id)
        return render_template("settings_api_keys.html", keys=keys, new_key=new_key)


@bp.post("/settings/api-keys/<key_id>/rotate")
@admin_required
def settings_api_key_rotate(key_id: str):
    with tx() as s:
        try:
            with s.begin_nested():
                _, new_key = locations.rotate(s, locations.get(s, g.location_id, key_id), now())
        except PunctualError as exc:
            flash(exc.message, "error")
            return redirect(url_for("pages.settings_api_keys"))
        keys = locations.keys(s, g.location_id)
        flash("API key rotated: the old key is refused from now on.", "success")
        return render_template("settings_api_keys.html", keys=keys, new_key=new_key)


@bp.post("/settings/api-keys/<key_id>/revoke")
@admin_required
def settings_api_key_revoke(key_id: str):
    with tx() as s:
        locations.revoke(locations.get(s, g.location_id, key_id), now())
    flash("API key revoked: requests using it are refused from now on.", "success")
    return redirect(url_for("pages.settings_api_keys"))


@bp.get("/settings/calendars")
@login_required
def settings_calendars():
    with tx() as s:
        calendars = list(s.scalars(select(Calendar).where(Calendar.location_id == g.location_id).order_by(Calendar.name)))
        users = {u.id: u for u in s.scalars(select(User).where(User.location_id == g.location_id))}
        connected = {c.user_id: c.status for c in s.scalars(select(ZoomConnection).where(
            ZoomConnection.location_id == g.location_id))}
        return render_template("settings_calendars.html", calendars=calendars, users=users, connected=connected)


def location_choice(form, prefix: str = "") -> str | None:
    """The meeting-location widget: ``zoom``, ``static`` + its text, or ``none`` (fields ``{prefix}kind`` and
    ``{prefix}static``)."""
    choice = form.get(f"{prefix}kind", "none")
    if choice == "zoom":
        return "zoom"
    if choice == "static":
        return form.get(f"{prefix}static", "").strip() or None
    return None


@bp.post("/settings/calendars/<calendar_id>/members/<user_id>")
@login_required
def settings_member_location(calendar_id: str, user_id: str):
    with tx() as s:
        calendar = owned(s, Calendar, calendar_id, "calendar")
        user = owned(s, User, user_id, "user")
        acting = s.get(User, g.user.id)
        try:
            with s.begin_nested():
                zoom_connections.set_member_location(s, calendar, user, location_choice(request.form), now=now(),
                                                     acting_user=acting)
        except PunctualError as exc:
            flash(f"{user.name}: {exc.message}", "error")
            return redirect(url_for("pages.settings_calendars"))
    flash(f"Meeting location for {user.name} on {calendar.name} saved.", "success")
    return redirect(url_for("pages.settings_calendars"))


# -- My profile → Integrations → Zoom ---------------------------------------------------------------


@bp.get("/profile")
@login_required
def profile():
    with tx() as s:
        user = s.get(User, g.user.id)
        conn = zoom_connections.connection_for(s, user.id)
        memberships = s.execute(select(CalendarMember, Calendar.name).join(Calendar, Calendar.id == CalendarMember.calendar_id)
                                .where(CalendarMember.user_id == user.id)).all()
        try:
            zoom_service()
            zoom_ready = True
        except ZoomNotConfigured:
            zoom_ready = False
        try:
            google_service()
            google_ready = True
        except GoogleNotConfigured:
            google_ready = False
        return render_template("profile.html", user=user, conn=conn, zoom_ready=zoom_ready, memberships=memberships,
                               google=google_connections.connection_for(s, user.id), google_ready=google_ready,
                               requests_today=zoom_connections.budget_used_today(conn, now()) if conn else 0,
                               daily_limit=zoom_connections.DAILY_BUDGET)


def _start_oauth(service, not_configured: type[PunctualError]):
    """Send the user's browser to the provider's consent page (Zoom and Google alike)."""
    try:
        url, _ = service().start(g.user.id, now=now())
    except not_configured as exc:
        flash(exc.message, "error")
        return redirect(url_for("pages.profile"))
    return redirect(url)


@bp.post("/profile/zoom/connect")
@login_required
def profile_zoom_connect():
    return _start_oauth(zoom_service, ZoomNotConfigured)


@bp.post("/profile/zoom/disconnect")
@login_required
def profile_zoom_disconnect():
    try:
        result = zoom_service().disconnect(g.user.id, delete_future_meetings=request.form.get("delete_future_meetings") == "on",
                                           now=now())
    except PunctualError as exc:
        flash(exc.message, "error")
        return redirect(url_for("pages.profile"))
    flash(result.message or "Zoom disconnected.", "success")
    return redirect(url_for("pages.profile"))


@bp.post("/profile/google/connect")
@login_required
def profile_google_connect():
    return _start_oauth(google_service, GoogleNotConfigured)


@bp.post("/profile/google/disconnect")
@login_required
def profile_google_disconnect():
    try:
        google_service().disconnect(g.user.id, now=now())
    except PunctualError as exc:
        flash(exc.message, "error")
        return redirect(url_for("pages.profile"))
    flash("Google Calendar disconnected: access was revoked at Google.", "success")
    return redirect(url_for("pages.profile"))


@bp.post("/profile/meeting-location")
@login_required
def profile_meeting_location():
    with tx() as s:
        user = s.get(User, g.user.id)
        try:
            with s.begin_nested():
                changed = zoom_connections.set_default_location(
                    s, user, location_choice(request.form), apply_to_calendars=request.form.get("apply_to_calendars") == "on",
                    now=now(), acting_user=user)
        except PunctualError as exc:
            flash(exc.message, "error")
            return redirect(url_for("pages.profile"))
    flash("Default meeting location saved" + (f" and applied to {changed} of your calendars." if changed else "."), "success")
    return redirect(url_for("pages.profile"))


@bp.post("/profile/password")
@login_required
def profile_password():
    with tx() as s:
        user = s.get(User, g.user.id)
        if not accounts.verify_password(user, request.form.get("current_password", "")):
            flash("Current password: not right.", "error")
            return redirect(url_for("pages.profile"))
        try:
            accounts.set_password(user, request.form.get("new_password", ""))
        except PunctualError as exc:
            flash(f"New password: {exc.fields.get('password', [exc.message])[0]}", "error")
            return redirect(url_for("pages.profile"))
        session["pw"] = user.password_hash[-16:]
    flash("Password changed. Other devices are signed out.", "success")
    return redirect(url_for("pages.profile"))
