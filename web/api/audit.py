"""``/api/v1/audit``: the location's audit trail, newest first — which key or user changed what, when."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate

from automations.store.models import AuditEvent
from web.api import responses as out
from web.api.common import Id, PageQuery, doc, page, paginate, query_args, scoped, tx

bp = Blueprint("audit", __name__)


class AuditQuery(PageQuery):
    entity_type = fields.String(validate=validate.Length(min=1, max=50))
    entity_id = Id()
    actor_id = fields.String(validate=validate.Length(min=1, max=100))


@bp.get("/audit")
@doc("List audit events, newest first (every change, with the key or user that made it)", query=AuditQuery,
     response=out.AuditEventOut, many=True)
def list_events() -> ResponseReturnValue:
    args = query_args(AuditQuery)
    with tx() as s:
        query = scoped(AuditEvent)
        for key in ("entity_type", "entity_id", "actor_id"):
            if args.get(key):
                query = query.where(getattr(AuditEvent, key) == args[key])
        rows, cursor = paginate(s, query, AuditEvent, args, newest_first=True)
        return page(out.dump_many(out.AuditEventOut, rows), cursor)
