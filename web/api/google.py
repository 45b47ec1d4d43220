"""Google Calendar for users and calendar members: connect (``authorize_url`` for the user's browser;
Google then redirects to /integrations/google/callback), disconnect (revoked at Google), the user's
writable Google calendars (fetched from Google), and linking a calendar member to one of them."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate

from automations.booking import availability
from automations.google import connections as google_connections
from automations.store.models import Calendar, GoogleConnection, User
from web.api import serialize
from web.api.common import BodySchema, QuerySchema, Timestamp, doc, json_body, now, owned, query_args, tx
from web.integrations.google import google_service

bp = Blueprint("google", __name__)


class MemberGoogleCalendarBody(BodySchema):
    google_calendar_id = fields.String(required=True, allow_none=True, validate=validate.Length(min=1, max=300),
                                       metadata={"description": "an id from GET /users/{id}/google/calendars, "
                                                                "or null to stop writing there"})


class BusyQuery(QuerySchema):
    start = Timestamp(metadata={"description": "default: now"})
    days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=62))


@bp.get("/users/<user_id>/busy-times")
@doc("Time the user is busy outside Punctual (events made in Google, free/busy): shown as blocked time",
     query=BusyQuery, response="BusyTimes")
def busy_times(user_id: str) -> ResponseReturnValue:
    args = query_args(BusyQuery)
    start = args.get("start") or now()
    end = start + timedelta(days=args["days"])
    with tx() as s:
        owned(s, User, user_id, "user")
        rows = availability.busy_times(s, [user_id], start, end)
        return {"items": [{"start_time": serialize.ts(b.start_at), "end_time": serialize.ts(b.end_at),
                           "title": b.title, "source": b.source} for b in rows]}


@bp.post("/users/<user_id>/google/connect")
@doc("Start connecting the user's Google Calendar: open `authorize_url` in that user's browser (single use, "
     "PKCE, expires in 10 minutes)", response="GoogleAuthorization", errors=(409,))
def connect(user_id: str) -> ResponseReturnValue:
    json_body(BodySchema, optional=True)
    service = google_service()
    with tx() as s:
        owned(s, User, user_id, "user")
    url, expires_at = service.start(user_id, now=now())
    return {"authorize_url": url, "expires_at": serialize.ts(expires_at)}


@bp.get("/users/<user_id>/google")
@doc("The user's Google connection: active, broken (reconnect) or not_connected", response="GoogleConnectionInfo")
def status(user_id: str) -> ResponseReturnValue:
    with tx() as s:
        owned(s, User, user_id, "user")
        conn = google_connections.connection_for(s, user_id)
        return _info(conn)


def _info(conn: GoogleConnection | None) -> dict:
    return {"status": conn.status if conn else "not_connected", "status_reason": conn.status_reason if conn else None,
            "connected_at": serialize.ts(conn.created_at) if conn else None}


@bp.delete("/users/<user_id>/google")
@doc("Disconnect Google: the grant is revoked at Google and the tokens deleted", response="GoogleConnectionInfo")
def disconnect(user_id: str) -> ResponseReturnValue:
    with tx() as s:
        owned(s, User, user_id, "user")
    google_service().disconnect(user_id, now=now())
    return _info(None)


@bp.get("/users/<user_id>/google/calendars")
@doc("The user's Google calendars Punctual can write to (fetched from Google)", response="GoogleCalendarList",
     errors=(409,))
def calendars(user_id: str) -> ResponseReturnValue:
    with tx() as s:
        owned(s, User, user_id, "user")
    found = google_service().list_calendars(user_id, now=now())
    return {"items": [{"id": c.id, "summary": c.summary, "primary": c.primary, "time_zone": c.time_zone}
                      for c in found]}


@bp.put("/calendars/<calendar_id>/members/<user_id>/google-calendar")
@doc("Write this member's appointments to one of their Google calendars (its busy times then block their "
     "slots), or stop with null", body=MemberGoogleCalendarBody, response="CalendarDetail", errors=(409,))
def link_member(calendar_id: str, user_id: str) -> ResponseReturnValue:
    body = json_body(MemberGoogleCalendarBody)
    wanted = body["google_calendar_id"]
    with tx() as s:
        owned(s, Calendar, calendar_id, "calendar")
        owned(s, User, user_id, "user")
    choices = google_service().list_calendars(user_id, now=now()) if wanted else None
    with tx() as s:
        cal = owned(s, Calendar, calendar_id, "calendar")
        google_connections.link_member_calendar(s, cal, user_id, wanted, choices=choices, now=now())
        return serialize.calendar_detail(s, cal)
