"""``/api/v1/api-keys``: the location's API keys — list (prefix and last use, never the key), create
(the key shown once), rotate (a new key, the old one revoked at once) and revoke. Domain logic in
``automations.booking.locations``."""

from __future__ import annotations

from flask import Blueprint, g
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate

from automations.booking import locations as keys
from automations.errors import Conflict
from web.api import responses as out
from web.api.common import BodySchema, doc, json_body, location, now, tx
from web.auth import current_location_id

bp = Blueprint("api_keys", __name__)


class ApiKeyCreate(BodySchema):
    name = fields.String(load_default="default", validate=validate.Length(min=1, max=100))


def _issued(row, key: str) -> dict:
    return out.dump(out.ApiKeyIssuedOut, {**{name: getattr(row, name) for name in out.ApiKeyOut().fields},
                                          "key": key})


@bp.get("/api-keys")
@doc("List the location's API keys (prefix and last use; the keys themselves are never shown again)",
     response=out.ApiKeyOut, many=True)
def list_keys() -> ResponseReturnValue:
    with tx() as s:
        # A handful per location: one page.
        return {"items": out.dump_many(out.ApiKeyOut, keys.keys(s, current_location_id())), "next_cursor": None}


@bp.post("/api-keys")
@doc("Create an API key: the response carries the key, shown this once", body=ApiKeyCreate, body_optional=True,
     response=out.ApiKeyIssuedOut, status=201)
def create() -> ResponseReturnValue:
    data = json_body(ApiKeyCreate, optional=True)
    with tx() as s:
        row, key = keys.issue(s, location(s), now=now(), name=data["name"])
        result = _issued(row, key)
    return result, 201


@bp.post("/api-keys/<key_id>/rotate")
@doc("Rotate an API key: a new key (shown once) with the same name; the old one stops working at once",
     response=out.ApiKeyIssuedOut, status=201, errors=(409,))
def rotate(key_id: str) -> ResponseReturnValue:
    json_body(BodySchema, optional=True)
    with tx() as s:
        row, key = keys.rotate(s, keys.get(s, current_location_id(), key_id), now())
        result = _issued(row, key)
    return result, 201


@bp.delete("/api-keys/<key_id>")
@doc("Revoke an API key (it stops working at once; the key that makes this call cannot revoke itself)",
     status=204, errors=(409,))
def revoke(key_id: str) -> ResponseReturnValue:
    with tx() as s:
        row = keys.get(s, current_location_id(), key_id)
        if row.id == g.get("api_key_id"):
            raise Conflict("a key cannot revoke itself: use another key, or rotate this one")
        keys.revoke(row, now())
    return "", 204
