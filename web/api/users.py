"""``/api/v1/users``: staff with their Zoom connection and default meeting location; connecting and
disconnecting a user's own Zoom account; where meeting links come from (user default, calendar member).

The API key acts for the location, as an admin would: Zoom can be made someone's meeting location only
once that user has connected their own Zoom account (each user connects their own, from the authorization
URL this API hands out). Provider calls (revoking tokens) happen outside the request's transaction.
"""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate
from sqlalchemy import select

from automations.store.models import Calendar, User, ZoomConnection
from automations.zoom import connections as zoom_connections
from web.api import responses as out
from web.api import serialize
from web.api.common import (
    BodySchema,
    PageQuery,
    StrictBoolean,
    audit,
    doc,
    json_body,
    now,
    owned,
    page,
    paginate,
    query_args,
    scoped,
    tx,
)
from web.integrations.zoom import zoom_service

bp = Blueprint("users", __name__)

LOCATION_HELP = '"zoom" (a new Zoom meeting per booking), a static link or text, or null (none)'


class DisconnectBody(BodySchema):
    delete_future_meetings = StrictBoolean(
        load_default=False,
        metadata={"description": "also delete, in Zoom, the meetings Punctual created for upcoming appointments"})


class DefaultLocationBody(BodySchema):
    location = fields.String(required=True, allow_none=True, validate=validate.Length(max=1000),
                             metadata={"description": LOCATION_HELP})
    apply_to_calendars = StrictBoolean(
        load_default=False, metadata={"description": "also set it on every calendar the user is a member of"})


class MemberLocationBody(BodySchema):
    location = fields.String(required=True, allow_none=True, validate=validate.Length(max=1000),
                             metadata={"description": LOCATION_HELP + "; null falls back to the user's default"})


def user_json(user: User, conn: ZoomConnection | None, at) -> dict:
    zoom = {
        "status": conn.status if conn else "not_connected",
        "email": conn.email if conn else None,
        "status_reason": conn.status_reason if conn else None,
        "connected_at": conn.created_at if conn else None,
        "requests_today": zoom_connections.budget_used_today(conn, at) if conn else 0,
        "daily_limit": zoom_connections.DAILY_BUDGET,
    }
    return out.dump(out.UserOut, {
        "id": user.id, "first_name": user.first_name, "last_name": user.last_name, "name": user.name,
        "email": user.email, "role": user.role, "timezone": user.timezone,
        "default_meeting_location": user.default_meeting_location, "zoom": zoom,
        "created_at": user.created_at,
    })


def _users_json(session, rows: list[User]) -> list[dict]:
    ids = [u.id for u in rows]
    conns = {c.user_id: c for c in session.scalars(select(ZoomConnection).where(ZoomConnection.user_id.in_(ids)))} if ids else {}
    at = now()
    return [user_json(u, conns.get(u.id), at) for u in rows]


@bp.get("/users")
@doc("List users (staff), oldest first, with their Zoom connection and default meeting location",
     query=PageQuery, response=out.UserOut, many=True)
def list_users() -> ResponseReturnValue:
    args = query_args(PageQuery)
    with tx() as s:
        rows, cursor = paginate(s, scoped(User), User, args)
        return page(_users_json(s, rows), cursor)


@bp.get("/users/<user_id>")
@doc("Get a user with their Zoom connection and default meeting location", response=out.UserOut)
def get_user(user_id: str) -> ResponseReturnValue:
    with tx() as s:
        return _users_json(s, [owned(s, User, user_id, "user")])[0]


@bp.post("/users/<user_id>/zoom/connect")
@doc("Start connecting the user's own Zoom account: open `authorize_url` in that user's browser; Zoom "
     "then redirects to /integrations/zoom/callback. The link is single-use and expires.",
     response=out.ZoomAuthorizationOut, errors=(409,))
def connect_zoom(user_id: str) -> ResponseReturnValue:
    json_body(BodySchema, optional=True)
    service = zoom_service()
    with tx() as s:
        owned(s, User, user_id, "user")
    url, expires_at = service.start(user_id, now=now())
    audit("users.zoom_connect", "users", user_id, "started connecting the user's Zoom account")
    return out.dump(out.ZoomAuthorizationOut, {"authorize_url": url, "expires_at": expires_at})


@bp.delete("/users/<user_id>/zoom")
@doc("Disconnect the user's Zoom account: revoke and delete the tokens. With delete_future_meetings, the "
     "meetings Punctual created in Zoom for upcoming appointments are deleted first (status "
     "`disconnecting` until done); their reminders then use the calendar's fallback location.",
     body=DisconnectBody, body_optional=True, response=out.ZoomDisconnectOut, errors=(409,))
def disconnect_zoom(user_id: str) -> ResponseReturnValue:
    body = json_body(DisconnectBody, optional=True)
    with tx() as s:
        owned(s, User, user_id, "user")
    result = zoom_service().disconnect(user_id, delete_future_meetings=body["delete_future_meetings"], now=now())
    audit("users.zoom_disconnect", "users", user_id,
          f"disconnected Zoom ({result.status}; {result.meetings_to_delete} meeting(s) to delete)")
    return out.dump(out.ZoomDisconnectOut, result)


@bp.put("/users/<user_id>/default-meeting-location")
@doc("Set the user's default meeting location, optionally on all their calendars. Zoom can be chosen "
     "only once the user has connected their own Zoom account.",
     body=DefaultLocationBody, response=out.DefaultMeetingLocationOut, errors=(409,))
def set_default_location(user_id: str) -> ResponseReturnValue:
    body = json_body(DefaultLocationBody)
    with tx() as s:
        user = owned(s, User, user_id, "user")
        changed = zoom_connections.set_default_location(
            s, user, body["location"], apply_to_calendars=body["apply_to_calendars"], now=now())
        s.flush()
        return {"user": _users_json(s, [user])[0], "calendars_updated": changed}  # user already dumped


@bp.put("/calendars/<calendar_id>/members/<user_id>/meeting-location")
@doc("Set a calendar member's meeting location. Zoom can be chosen only once that user has connected "
     "their own Zoom account. Applies to bookings from now on.",
     body=MemberLocationBody, response=out.CalendarDetailOut, errors=(409,))
def set_member_location(calendar_id: str, user_id: str) -> ResponseReturnValue:
    body = json_body(MemberLocationBody)
    with tx() as s:
        calendar = owned(s, Calendar, calendar_id, "calendar")
        user = owned(s, User, user_id, "user")
        zoom_connections.set_member_location(s, calendar, user, body["location"], now=now())
        s.flush()
        return serialize.calendar_detail(s, calendar)
