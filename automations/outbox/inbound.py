"""What contacts send us: replies, and the opt-out / opt-in / help keywords (contract §2.6).

- Every inbound text is stored once (``InboundMessage``, unique by the provider's id, so webhook retries
  are harmless) on the contact it answers: the contact whose number we last texted or called, else a
  contact with that number.
- ``STOP`` and the other opt-out words (or Twilio's ``OptOutType=STOP``) turn on SMS do-not-disturb for every
  contact with that number and withdraw the texts still pending to it; ``START``/``UNSTOP`` (and ``YES``
  from someone who had opted out) clear it; ``HELP``/``INFO`` change nothing: Twilio answers them itself.
  Only a message whose whole body is the keyword counts ("Stop" does, "stop please" does not).
- Each inbound message emits ``contact.replied``. Handling it (``on_reply``, called by the event loop):
  enrollments of workflows with "stop on response" exit; ``wait_reply`` steps resume when the message is a
  reply (a keyword for opting out or for help is not an answer).

A send that meets Twilio's 21610 ("unsubscribed recipient") is an implicit STOP: delivery calls
:func:`opt_out` too.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.booking import domain_events
from automations.runs import enrollments
from automations.runs.workflow_doc import doc_for_version
from automations.store.models import Contact, Enrollment, InboundMessage, Location, Message, WorkflowVersion
from automations.store.states import EnrollmentState, EventKind, MessageStatus

log = logging.getLogger(__name__)

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
#: Intents that answer a ``wait_reply`` step.
REPLY_INTENTS = frozenset({"reply", "opt_in"})
MAX_BODY = 1600 * 4  # a long concatenated text; anything beyond is cut, never refused


def classify(body: str, opt_out_type: str | None, *, opted_out: bool) -> str:
    """``reply``, ``opt_out``, ``opt_in`` or ``help`` for an inbound text."""
    kind = (opt_out_type or "").strip().upper()
    if kind == "STOP":
        return "opt_out"
    if kind == "START":
        return "opt_in"
    if kind == "HELP":
        return "help"
    word = (body or "").strip().upper()
    if word in OPT_OUT_WORDS:
        return "opt_out"
    # "YES" is Twilio's opt-in word, but to someone who never opted out it is just an answer ("Reply YES").
    if word in ("START", "UNSTOP") or (word == "YES" and opted_out):
        return "opt_in"
    if word in HELP_WORDS:
        return "help"
    return "reply"


def _who(session: Session, from_number: str, to_number: str | None) -> tuple[Location | None, Contact | None]:
    """The location and contact an inbound text answers."""
    last = session.scalars(
        select(Message)
        .where(Message.to_address == from_number, Message.channel.in_(("sms", "call", "voicemail")),
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


def _set_sms_dnd(session: Session, phone: str, value: bool, now: datetime) -> int:
    changed = 0
    for contact in session.scalars(select(Contact).where(Contact.phone == phone, Contact.sms_dnd != value)):
        contact.sms_dnd = value
        contact.updated_at = now
        domain_events.emit(session, location_id=contact.location_id, kind=EventKind.CONTACT_UPDATED, now=now,
                           contact_id=contact.id, changed=["sms_dnd"])
        changed += 1
    return changed


def opt_out(session: Session, phone: str, *, now: datetime, reason: str) -> int:
    """Turn on SMS do-not-disturb for every contact with ``phone`` and withdraw the texts pending to it.

    Every contact, in every location: one deployment sends from one Twilio account, whose opt-out blocks the
    number for all of them anyway (21610). Returns how many pending texts were withdrawn."""
    from automations.outbox.delivery import cancel_for  # delivery imports this module

    _set_sms_dnd(session, phone, True, now)
    return cancel_for(session, where=(Message.channel == "sms") & (Message.to_address == phone),
                      reason=f"withdrawn: the recipient opted out of SMS ({reason})")


def opt_in(session: Session, phone: str, *, now: datetime) -> int:
    return _set_sms_dnd(session, phone, False, now)


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


def on_reply(session: Session, contact_id: str, payload: dict, now: datetime) -> None:
    """A ``contact.replied`` event: stop-on-response exits, and waiting ``wait_reply`` steps resume."""
    live = list(session.scalars(
        select(Enrollment).where(Enrollment.contact_id == contact_id, Enrollment.live.is_(True))
        .order_by(Enrollment.created_at, Enrollment.id)
    ))
    channel = payload.get("channel", "sms")
    for enrollment in live:
        settings = doc_for_version(session.get(WorkflowVersion, enrollment.version_id)).settings
        if settings.get("stop_on_response"):
            enrollments.finish(session, enrollment, state=EnrollmentState.EXITED, now=now, cancel_pending=True,
                               reason=f"contact replied by {channel} (stop on response)")
            continue
        if (enrollment.state == EnrollmentState.WAITING and enrollment.wait_kind == "reply"
                and payload.get("intent", "reply") in REPLY_INTENTS):
            # Imported here: the interpreter imports every step type, and wait_reply imports this module.
            from automations.engine import interpreter

            interpreter.advance(session, enrollment, now, cause="event")
