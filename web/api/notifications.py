"""``/api/v1/notifications``: staff's in-app notifications (the builder's bell), and marking one read."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from automations.store.models import Notification
from web.api import responses as out
from web.api import serialize
from web.api.common import (
    BodySchema,
    Id,
    PageQuery,
    QueryBoolean,
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

bp = Blueprint("notifications", __name__)


class NotificationListQuery(PageQuery):
    user_id = Id()
    unread = QueryBoolean(metadata={"description": "true: only unread; false: only read"})


@bp.get("/notifications")
@doc("List in-app notifications, newest first", query=NotificationListQuery, response=out.NotificationOut, many=True)
def list_notifications() -> ResponseReturnValue:
    args = query_args(NotificationListQuery)
    with tx() as s:
        query = scoped(Notification)
        if args.get("user_id"):
            query = query.where(Notification.user_id == args["user_id"])
        if "unread" in args:
            query = query.where(Notification.read_at.is_(None) if args["unread"] else Notification.read_at.is_not(None))
        rows, cursor = paginate(s, query, Notification, args, newest_first=True)
        return page([serialize.notification(n) for n in rows], cursor)


@bp.post("/notifications/<notification_id>/read")
@doc("Mark a notification read (idempotent: the first read time is kept)", response=out.NotificationOut)
def mark_read(notification_id: str) -> ResponseReturnValue:
    json_body(BodySchema, optional=True)
    with tx() as s:
        note = owned(s, Notification, notification_id, "notification")
        if note.read_at is None:
            note.read_at = now()
        return serialize.notification(note)
