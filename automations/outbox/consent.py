"""Consent: who may be sent what. Opt-out / opt-in keywords (contract §2.6), do-not-disturb per channel, and
withdrawing what is still pending when someone opts out.

- ``STOP`` and the other opt-out words (or Twilio's ``OptOutType=STOP``) turn on SMS do-not-disturb for every
  contact with that number and withdraw the texts still pending to it; ``START``/``UNSTOP`` (and ``YES``
  from someone who had opted out) clear it; ``HELP``/``INFO`` change nothing: Twilio answers them itself.
  Only a message whose whole body is the keyword counts ("Stop" does, "stop please" does not).
- A send that meets Twilio's 21610 ("unsubscribed recipient") is an implicit STOP: delivery and receipts call
  :func:`opt_out` too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from automations.booking import domain_events
from automations.store.db import rowcount
from automations.store.models import Contact, Message
from automations.store.states import EventKind, MessageStatus

OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
#: The do-not-disturb flag on the contact that stops each channel (calls and voicemail drops are not texts).
DND_FLAG = {"sms": "sms_dnd", "email": "email_dnd"}


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
    if word in OPT_IN_WORDS and (word != "YES" or opted_out):
        return "opt_in"
    if word in HELP_WORDS:
        return "help"
    return "reply"


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
    _set_sms_dnd(session, phone, True, now)
    return cancel_for(session, where=(Message.channel == "sms") & (Message.to_address == phone),
                      reason=f"withdrawn: the recipient opted out of SMS ({reason})")


def opt_in(session: Session, phone: str, *, now: datetime) -> int:
    return _set_sms_dnd(session, phone, False, now)


def opted_out(contact: Contact | None, channel: str) -> str | None:
    """Why ``contact`` must not get a message on ``channel`` (e.g. "contact opted out of SMS"), or None."""
    flag = DND_FLAG.get(channel)
    if contact is None or flag is None or not getattr(contact, flag):
        return None
    return f"contact opted out of {'SMS' if channel == 'sms' else channel}"


def cancel_for(session: Session, *, where, reason: str) -> int:
    """Withdraw pending messages matching ``where`` (opt-outs, cancellations)."""
    return rowcount(session.execute(
        update(Message).where(where, Message.status == MessageStatus.PENDING)
        .values(status=MessageStatus.CANCELLED, status_reason=reason)
        .execution_options(synchronize_session=False)
    ))
