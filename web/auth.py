"""Bearer API keys: ``Authorization: Bearer <key>`` names one location, and every API query is
scoped to it. A missing or unknown key is a 401 (with ``WWW-Authenticate: Bearer``, added by
``web.errors``); another location's ids are 404, exactly as if they did not exist.
"""

from __future__ import annotations

from flask import g, request
from sqlalchemy.orm import Session, sessionmaker

from automations.booking.locations import location_for_key
from automations.errors import Unauthorized
from automations.store.db import read_only_session

#: Longer than any key we issue; anything bigger is not worth hashing.
MAX_KEY_LENGTH = 512


def bearer_key() -> str:
    """The key in the Authorization header, or Unauthorized explaining what is wrong with it."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    if len(key) > MAX_KEY_LENGTH:
        raise Unauthorized("invalid API key")
    return key


def authenticate(factory: sessionmaker[Session]) -> str:
    """Resolve the request's API key to its location id and remember it in ``g.location_id``."""
    key = bearer_key()
    with read_only_session(factory) as session:
        location = location_for_key(session, key)
        if location is None:  # a key whose location is gone
            raise Unauthorized("invalid API key")
        g.location_id = location.id
    return g.location_id


def current_location_id() -> str:
    location_id = g.get("location_id")
    if location_id is None:  # a route forgot to authenticate: fail closed
        raise Unauthorized("not authenticated")
    return location_id
