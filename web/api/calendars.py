"""``/api/v1/calendars``: list calendars, and get one with its members and their meeting locations."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from automations.store.models import Calendar
from web.api import serialize
from web.api.common import PageQuery, doc, owned, page, paginate, query_args, scoped, tx

bp = Blueprint("calendars", __name__)


@bp.get("/calendars")
@doc("List calendars, oldest first", query=PageQuery, response="Calendar", many=True)
def list_calendars() -> ResponseReturnValue:
    args = query_args(PageQuery())
    with tx() as s:
        rows, cursor = paginate(s, scoped(Calendar), Calendar, args)
        return page([serialize.calendar(c) for c in rows], cursor)


@bp.get("/calendars/<calendar_id>")
@doc("Get a calendar with its members and their meeting locations", response="CalendarDetail")
def get(calendar_id: str) -> ResponseReturnValue:
    with tx() as s:
        return serialize.calendar_detail(s, owned(s, Calendar, calendar_id))
