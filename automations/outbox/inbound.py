"""What contacts send us: every inbound text is stored once (``InboundMessage``, unique by the provider's id,
so webhook retries are harmless) on the contact it answers: the contact whose number we last texted or called,
else a contact with that number. Keywords act through ``automations.outbox.consent`` (STOP, START); each inbound
message emits ``contact.replied``, which the engine handles (``automations.engine.replies``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.booking import domain_events
from automations.outbox.channels import PHONE_CHANNELS
from automations.outbox.consent import classify, opt_in, opt_out
from automations.store.models import Contact, InboundMessage, Location, Message
from automations.store.states import EventKind, MessageStatus

log = logging.getLogger(__name__)

#: Intents that answer a ``wait_reply`` step.
REPLY_INTENTS = frozenset({"reply", "opt_in"})
MAX_BODY = 1600 * 4  # a long concatenated text; anything beyond is cut, never refused


def _who(session: Session, from_number: str, to_number: str | None) -> tuple[Location | None, Contact | None]:
    """The location and contact an inbound text answers."""
    last = session.scalars(
        select(Message)
        .where(Message.to_address == from_number, Message.channel.in_(PHONE_CHANNELS),
               Message.audience == "contact", Message.contact_id.is_not(None),
               Message.status.not_in((MessageStatus.PENDING, MessageStatus.CANCELLED)))
        .order_by(Message.created_at.desc(), Message.id.desc()).limit(1)
    ).first()
    if last is not None:
        return session.get(Location, last.location_id), session.get(Contact, last.contact_id)
    contacts = list(session.scalars(
        select(Contact).where(Contact.phone == from_number).order_by(Contact.updated_at.desc(), Contact.id)
    ))
    by_number = session.scalars(select(Location).where(Location.phone == to_number)).first() if to_number else None
    if by_number is not None:
        mine = [c for c in contacts if c.location_id == by_number.id]
        return by_number, (mine[0] if mine else None)
    if contacts:
        return session.get(Location, contacts[0].location_id), contacts[0]
    return None, None


def receive_sms(session: Session, *, provider_id: str, from_number: str, to_number: str | None, body: str,
                now: datetime, opt_out_type: str | None = None, provider: str = "twilio") -> InboundMessage | None:
    """Record one inbound text and act on it. The same ``provider_id`` twice is a no-op (returns the first)."""
    seen = session.scalars(select(InboundMessage).where(InboundMessage.provider_id == provider_id)).first()
    if seen is not None:
        return seen
    body = (body or "")[:MAX_BODY]
    location, contact = _who(session, from_number, to_number)
    intent = classify(body, opt_out_type, opted_out=bool(contact and contact.sms_dnd))
    if intent == "opt_out":
        opt_out(session, from_number, now=now, reason=f"replied {body.strip()[:20] or 'STOP'}")
    elif intent == "opt_in":
        opt_in(session, from_number, now=now)
    if location is None:
        log.warning("inbound text %s from %s matches no contact or location: dropped", provider_id, from_number)
        return None
    inbound = InboundMessage(
        location_id=location.id, contact_id=contact.id if contact else None, channel="sms", provider=provider,
        provider_id=provider_id, from_address=from_number, to_address=to_number, body=body, intent=intent,
        received_at=now,
    )
    session.add(inbound)
    session.flush()
    if contact is not None:
        domain_events.emit(session, location_id=location.id, kind=EventKind.CONTACT_REPLIED, now=now,
                           contact_id=contact.id, channel="sms", intent=intent, inbound_id=inbound.id)
    return inbound


def reply_since(session: Session, contact_id: str, channel: str, since: datetime) -> InboundMessage | None:
    """The first reply (an answer, not a keyword) from the contact on ``channel`` (``any`` for every channel)
    received at or after ``since``."""
    query = select(InboundMessage).where(
        InboundMessage.contact_id == contact_id, InboundMessage.received_at >= since,
        InboundMessage.intent.in_(REPLY_INTENTS),
    )
    if channel != "any":
        query = query.where(InboundMessage.channel == channel)
    return session.scalars(query.order_by(InboundMessage.received_at, InboundMessage.id).limit(1)).first()
