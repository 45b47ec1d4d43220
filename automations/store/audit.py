"""The audit trail: who (an API key, a user, the CLI) changed what, when. ``record`` adds the row in the
caller's transaction, so a change and its audit line commit together or not at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from automations.store.db import table_of
from automations.store.models import AuditEvent, new_id

# Built once, bound per call (see automations.booking.domain_events).
_INSERT = insert(table_of(AuditEvent))


@dataclass(frozen=True)
class Actor:
    """Who acts: ``api_key`` + the key's id, ``user`` + the user's id, or ``cli`` + the OS user name."""

    kind: str
    id: str | None


def record(session: Session, *, location_id: str | None, actor: Actor, action: str, entity_type: str,
           entity_id: str | None, at: datetime, summary: str = "") -> None:
    """Append the audit line (a plain INSERT: an append-only row needs no unit-of-work bookkeeping)."""
    session.execute(_INSERT, {
        "id": new_id(), "location_id": location_id, "actor_kind": actor.kind, "actor_id": (actor.id or "")[:100] or None,
        "action": action[:100], "entity_type": entity_type[:50], "entity_id": entity_id, "at": at,
        "summary": summary[:500]})
