"""Locations and their API keys: bearer keys shown once and stored as a sha256 hash, with a short
prefix to tell them apart, the time each was last used, rotation (a new key, the old one revoked) and
revocation (the row stays, for the audit trail)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, bindparam, select, update
from sqlalchemy.orm import Session

from automations.errors import Conflict, Unauthorized
from automations.store.db import get_in_location, get_row
from automations.store.models import ApiKey, Location

KEY_PREFIX = "pk_"
#: How many leading characters of a key are kept in the clear (``pk_`` + 8).
SHOWN_PREFIX = 11
#: ``last_used_at`` is written at most this often per key: not one write per request.
TOUCH_EVERY = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue(session: Session, location: Location, *, now: datetime, key: str | None = None,
          name: str = "default") -> tuple[ApiKey, str]:
    """A new key for the location: its row, and the key itself (shown once; only its hash is stored)."""
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(location_id=location.id, name=name, key_hash=hash_key(key), prefix=key[:SHOWN_PREFIX],
                 created_at=now)
    session.add(row)
    session.flush()
    return row, key


def issue_key(session: Session, location: Location, *, now: datetime, key: str | None = None, name: str = "default") -> str:
    """Create an API key for the location and return it (it is not stored, only its hash)."""
    return issue(session, location, now=now, key=key, name=name)[1]


#: What authenticating a key reads, built once: columns, not an ORM object (every API request runs it).
_KEY_BY_HASH = select(ApiKey.id, ApiKey.location_id, ApiKey.last_used_at, ApiKey.revoked_at).where(
    ApiKey.key_hash == bindparam("key_hash"))


def key_for(conn: Session | Connection, key: str) -> Row:
    """The live key for a presented key (its ``id``, ``location_id``, ``last_used_at``), or Unauthorized
    (unknown and revoked keys alike)."""
    row = conn.execute(_KEY_BY_HASH, {"key_hash": hash_key(key)}).first()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("invalid API key")
    return row


def location_for_key(session: Session, key: str) -> Location:
    return get_row(session, Location, key_for(session, key).location_id)


def needs_touch(row: ApiKey | Row, now: datetime) -> bool:
    """Whether the key's last use is older than ``TOUCH_EVERY`` (worth a write)."""
    return row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY


def touch_by_id(session: Session, key_id: str, now: datetime) -> None:
    """``touch`` without loading the row (the key was read in another, read-only, transaction)."""
    session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))


def keys(session: Session, location_id: str) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).where(ApiKey.location_id == location_id)
                                .order_by(ApiKey.created_at, ApiKey.id)))


def get(session: Session, location_id: str, key_id: str) -> ApiKey:
    return get_in_location(session, ApiKey, location_id, key_id, "API key")


def revoke(row: ApiKey, now: datetime) -> bool:
    """Revoke a key; False when it already was (idempotent)."""
    if row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True


def rotate(session: Session, row: ApiKey, now: datetime) -> tuple[ApiKey, str]:
    """A new key with the same name, and the old one revoked, in one transaction."""
    if row.revoked_at is not None:
        raise Conflict("this API key is revoked: create a new one instead")
    location = get_row(session, Location, row.location_id)
    revoke(row, now)
    return issue(session, location, now=now, name=row.name)


def reissue(session: Session, location: Location, *, now: datetime, key: str | None = None,
            name: str = "default") -> tuple[ApiKey, str]:
    """Revoke every live key of the location and issue one new key (the demo key, re-issued)."""
    for row in keys(session, location.id):
        revoke(row, now)
    if key:  # a chosen key that was issued before: bring its row back rather than collide on the hash
        existing = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
        if existing is not None and existing.location_id == location.id:
            existing.revoked_at = None
            return existing, key
    return issue(session, location, now=now, key=key, name=name)
