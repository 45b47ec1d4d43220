"""Writing domain events: every change workflows react to is recorded in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from automations.store.db import table_of
from automations.store.models import DomainEvent

# Built once, bound per call: building ``insert(...).values(...)`` each time cost more than running it.
_INSERT = insert(table_of(DomainEvent))


def emit(session: Session, *, location_id: str, kind: str, now: datetime, appointment_id: str | None = None,
         contact_id: str | None = None, **payload) -> None:
    """Append the event. A plain INSERT, not an ORM object: nothing reads it back in this transaction,
    and the unit of work's bookkeeping for an append-only row is most of its cost."""
    session.execute(_INSERT, {"location_id": location_id, "kind": str(kind), "appointment_id": appointment_id,
                              "contact_id": contact_id, "payload": payload, "created_at": now})
