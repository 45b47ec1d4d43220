"""Writing domain events: every change workflows react to is recorded in the same transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from automations.store.models import DomainEvent


def emit(session: Session, *, location_id: str, kind: str, now: datetime, appointment_id: str | None = None,
         contact_id: str | None = None, **payload) -> DomainEvent:
    event = DomainEvent(location_id=location_id, kind=str(kind), appointment_id=appointment_id,
                        contact_id=contact_id, payload=payload, created_at=now)
    session.add(event)
    return event
