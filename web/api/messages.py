"""``/api/v1/messages``: the outbox — every email, SMS and in-app message a workflow queued, with
its rendered text and delivery status (captured messages too, when no provider is configured)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate

from automations.outbox import channels
from automations.store.models import Message
from automations.store.states import MessageStatus
from web.api import responses as out
from web.api import serialize
from web.api.common import Id, PageQuery, doc, owned, page, paginate, query_args, scoped, tx

bp = Blueprint("messages", __name__)
CHANNELS = channels.names()


class MessageListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf([s.value for s in MessageStatus]))
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    appointment_id = Id()
    contact_id = Id()


@bp.get("/messages")
@doc("List outbox messages, newest first", query=MessageListQuery, response=out.MessageOut, many=True)
def list_messages() -> ResponseReturnValue:
    args = query_args(MessageListQuery)
    with tx() as s:
        query = scoped(Message)
        for key in ("status", "channel", "appointment_id", "contact_id"):
            if args.get(key):
                query = query.where(getattr(Message, key) == args[key])
        rows, cursor = paginate(s, query, Message, args, newest_first=True)
        return page([serialize.message(m) for m in rows], cursor)


@bp.get("/messages/<message_id>")
@doc("Get one outbox message", response=out.MessageOut)
def get(message_id: str) -> ResponseReturnValue:
    with tx() as s:
        return serialize.message(owned(s, Message, message_id))
