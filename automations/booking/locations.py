"""Locations and their API keys (bearer keys; only a hash is stored)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.errors import Unauthorized
from automations.store.models import ApiKey, Location

KEY_PREFIX = "pk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def issue_key(session: Session, location: Location, *, now: datetime, key: str | None = None, name: str = "default") -> str:
    """Create an API key for the location and return it (it is not stored, only its hash)."""
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(location_id=location.id, name=name, key_hash=hash_key(key), created_at=now))
    return key


def location_for_key(session: Session, key: str) -> Location:
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None:
        raise Unauthorized("invalid API key")
    return session.get(Location, row.location_id)
