"""What every page shares: the blueprint, CSRF, the signed-in user loaded once per request into ``g``
(``g.user``, ``g.location_id``: the one place pages are scoped to a location), ``login_required`` /
``admin_required``, HTML error pages, and the template context (navigation, the bell's unread count).

``g.location_id`` is the same value the API's bearer key sets, so ``web.api.common.owned`` and
``scoped`` scope pages exactly like the API: another location's ids are 404.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from automations.errors import PunctualError
from automations.store.db import get_row, read_only_session
from automations.store.models import Location, Notification, User

bp = Blueprint("pages", __name__)
csrf = CSRFProtect()

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class SignedIn:
    """The signed-in user as plain values (no ORM object outlives its session)."""

    id: str
    name: str
    email: str
    role: str
    timezone: str
    location_id: str
    location_name: str
    location_timezone: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def _factory():
    return current_app.extensions["punctual"].factory


def clock_now():
    return current_app.extensions["punctual"].clock.now()


@bp.before_request
def load_user_and_check_csrf() -> None:
    if request.method in STATE_CHANGING and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()
    g.user = None
    user_id = session.get("user_id")
    if not user_id:
        return
    with read_only_session(_factory()) as s:  # every signed-in page runs this: it takes no writer
        user = s.get(User, user_id)
        # A password change (or removal) ends every other session: the hash prefix is in the cookie.
        if user is None or not user.password_hash or session.get("pw") != user.password_hash[-16:]:
            session.clear()
            return
        loc = get_row(s, Location, user.location_id)
        g.user = SignedIn(user.id, user.name or user.email or "", user.email or "", user.role,
                          user.timezone or loc.timezone or "UTC", loc.id, loc.name, loc.timezone or "UTC")
        g.location_id = loc.id
        g.unread = s.scalar(select(func.count()).select_from(Notification).where(
            Notification.user_id == user.id, Notification.read_at.is_(None))) or 0


def login_required(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("user") is None:
            return redirect(url_for("pages.login", next=request.full_path if request.method == "GET" else None))
        return view(*args, **kwargs)
    return wrapped


def admin_required(view: Callable) -> Callable:
    @functools.wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not g.user.is_admin:
            return error_page(403, "Only a location admin can change this", "Ask an admin of your location.")
        return view(*args, **kwargs)
    return wrapped


NAV = [("Dashboard", "pages.dashboard"), ("Workflows", "pages.workflow_list"), ("Recipes", "pages.recipe_gallery"),
       ("Calendars", "pages.calendar_list"), ("Contacts", "pages.contact_list"),
       ("Outbox", "pages.outbox"), ("Settings", "pages.settings_home")]


@bp.app_context_processor
def page_context() -> dict:
    return {"nav": NAV, "current_user": g.get("user"), "unread": g.get("unread", 0)}


def error_page(status: int, title: str, text: str = ""):
    return render_template("error.html", title=title, text=text, status=status), status


def _html_http_error(exc: HTTPException):
    if isinstance(exc, CSRFError):
        return error_page(400, "This form expired", "Go back, reload the page and try again.")
    if exc.code == 404:
        return error_page(404, "Page not found", "It may have been deleted, or it belongs to another location.")
    return error_page(exc.code or 500, exc.name or "Error", exc.description or "")


def _html_punctual_error(exc: PunctualError):
    status = exc.status_code
    if status == 404:
        return error_page(404, "Page not found", "It may have been deleted, or it belongs to another location.")
    return error_page(status, exc.message or exc.code.replace("_", " "))


def _html_unexpected(exc: Exception):
    current_app.logger.exception("unhandled error on a page: %s", exc)
    return error_page(500, "Something went wrong", "The error was logged. Try again, or go back.")


bp.register_error_handler(HTTPException, _html_http_error)
bp.register_error_handler(PunctualError, _html_punctual_error)
bp.register_error_handler(Exception, _html_unexpected)


@bp.app_template_filter("when")
def when(value, with_zone: bool = True) -> str:
    """A UTC instant in the viewer's time zone, zone named: ``Tue 3 Nov 2026, 09:00 EST``."""
    if value is None:
        return "—"
    tz = g.user.tz if g.get("user") else ZoneInfo("UTC")
    local = value.astimezone(tz)
    return local.strftime("%a %-d %b %Y, %H:%M") + (f" {local.tzname()}" if with_zone else "")
