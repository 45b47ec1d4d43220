"""Bearer API keys: ``Authorization: Bearer <key>`` names one location, and every API query is
scoped to it. A missing, unknown or revoked key is a 401 (with ``WWW-Authenticate: Bearer``, added by
``web.errors``); another location's ids are 404, exactly as if they did not exist.

Authentication also applies the rate limits (``web.ratelimit``): an address with too many failed keys
gets 429 before its key is even looked at; each call counts against its key and its address (counted
in memory and synced to the shared database counters, ``automations.store.ratelimit.BatchedCounts``).
"""

from __future__ import annotations

from datetime import datetime

from flask import g, request
from sqlalchemy.orm import Session, sessionmaker

from automations.booking import locations
from automations.errors import Unauthorized
from automations.store import ratelimit
from automations.store.audit import Actor
from automations.store.db import read_only_connection, transaction
from web.ratelimit import WINDOW_SECONDS, RateLimited, RateLimits, exceeded

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


def _address() -> str:
    return request.remote_addr or "unknown"


def _over(counts: ratelimit.BatchedCounts, bucket: str, limit: int, now: datetime, what: str) -> RateLimited | None:
    """Count one call in ``bucket``; the error to answer with when that went past ``limit``."""
    if limit <= 0:
        return None
    count = counts.hit(bucket, now=now, limit=limit)
    if exceeded(count.hits, limit):
        return RateLimited(f"too many {what}: at most {limit} per minute; retry in {count.retry_after} s",
                           retry_after=count.retry_after)
    return None


def authenticate(factory: sessionmaker[Session], *, now: datetime, limits: RateLimits,
                 counts: ratelimit.BatchedCounts) -> str:
    """Resolve the request's API key to its location id; remember it and the key in ``g``.

    The hot path writes nothing: the key is read in a read-only transaction (Core statements on a bare
    connection: this runs for every request), calls are counted in
    ``counts`` (synced to the shared counters now and then), and the key's last use is written at most
    once a minute. A failed authentication is counted in the database at once."""
    address = _address()
    fail_bucket = f"auth-fail:ip:{address}"
    try:
        with read_only_connection(factory) as conn:
            if limits.auth_failures > 0:
                seen = ratelimit.peek(conn, fail_bucket, now=now, window_seconds=WINDOW_SECONDS)
                if seen.hits >= limits.auth_failures:
                    raise RateLimited(f"too many failed authentications from this address; retry in "
                                      f"{seen.retry_after} s", retry_after=seen.retry_after)
            row = locations.key_for(conn, bearer_key())
            location_id, key_id, stale = row.location_id, row.id, locations.needs_touch(row, now)
    except Unauthorized:
        if limits.auth_failures > 0:
            with transaction(factory) as session:
                ratelimit.hit(session, fail_bucket, now=now, window_seconds=WINDOW_SECONDS)
        raise
    # Counted even when refused: hammering past the limit keeps it closed.
    refused = (_over(counts, f"api:key:{key_id}", limits.per_key, now, "requests with this API key")
               or _over(counts, f"api:ip:{address}", limits.per_address, now, "requests from this address"))
    if stale:
        with transaction(factory) as session:
            locations.touch_by_id(session, key_id, now)
    if refused is not None:
        raise refused
    g.location_id, g.api_key_id = location_id, key_id
    return location_id


def current_location_id() -> str:
    location_id = g.get("location_id")
    if location_id is None:  # a route forgot to authenticate: fail closed
        raise Unauthorized("not authenticated")
    return location_id


def current_actor() -> Actor:
    """Who the request acts as, for the audit trail."""
    key_id = g.get("api_key_id")
    if key_id:
        return Actor("api_key", key_id)
    user = g.get("user")  # signed in to the pages (web/pages/base.py)
    return Actor("user", user.id) if user else Actor("anonymous", None)
