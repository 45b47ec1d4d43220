"""Delivery receipts: Twilio status callbacks for texts and calls, applied to the outbox (contract §2.5, §3.4).

A receipt finds its message by the provider's id (``MessageSid``/``CallSid``) or, when the worker that sent
it died before recording that id, by the outbox id carried in the callback URL (``?m=<id>``): the receipt
then binds the SID to the row, which is how a crash between "provider accepted" and "we recorded it" is
reconciled without sending again.

Receipts are idempotent and never move a message backwards (``status_moves_forward``): Twilio retries and
reorders callbacks. The raw provider status and a short history are kept on the message
(``provider_status``, ``status_history``);
a final ``undelivered``/``failed`` shows the Twilio error code and what it means. A ``failed`` receipt alerts
the location's admins (unless the recipient opted out: 21610 is an implicit STOP).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.outbox import alerts, consent
from automations.store.models import Message
from automations.store.states import MessageStatus
from providers.twilio_common import classify_code, map_call_status, map_message_status, status_moves_forward

#: Asynchronous delivery errors (§2.3), as the status reason shows them.
DELIVERY_ERRORS = {
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset",
    "30004": "message blocked by the recipient or carrier",
    "30005": "unknown destination handset (number inactive)",
    "30006": "landline or unreachable carrier",
    "30007": "message filtered by the carrier",
    "30008": "unknown error",
    "21610": "the recipient opted out (STOP)",
}
FINAL = frozenset({MessageStatus.DELIVERED, MessageStatus.UNDELIVERED, MessageStatus.FAILED})
# Twilio's own statuses in order, so the displayed provider status only moves forward too.
_RAW_RANK = {"accepted": 0, "scheduled": 0, "queued": 1, "initiated": 1, "sending": 2, "ringing": 2, "sent": 3,
             "in-progress": 3, "answered": 3, "delivered": 4, "read": 5, "undelivered": 4, "failed": 4,
             "completed": 4, "busy": 4, "no-answer": 4, "canceled": 4}
HISTORY_LIMIT = 20


@dataclass
class Applied:
    """What a receipt did: the message (None when unknown to us) and a line for the enrollment log."""

    message: Message | None
    changed: bool = False
    log_line: tuple[str, str, dict] | None = None  # (outcome, reason, detail)


def describe(code: str | None) -> str:
    if not code:
        return ""
    meaning = DELIVERY_ERRORS.get(code)
    return f"Twilio error {code}" + (f" ({meaning})" if meaning else "")


def find(session: Session, sid: str, hint: str | None) -> Message | None:
    m = session.scalars(select(Message).where(Message.provider_id == sid).limit(1)).first()
    if m is None and hint:
        candidate = session.get(Message, hint)
        # The hint only binds a row that has no provider id yet (or this one): never steal another send's.
        if candidate is not None and candidate.provider_id in (None, sid) and candidate.channel != "in_app":
            m = candidate
    return m


def apply(session: Session, *, sid: str, raw_status: str, kind: str, now: datetime,
          error_code: str | None = None, hint: str | None = None, answered_by: str | None = None) -> Applied:
    """Apply one status callback. ``kind`` is ``message`` or ``call``; ``hint`` the ``m`` URL parameter."""
    m = find(session, sid, hint)
    if m is None:
        return Applied(None)
    raw = (raw_status or "").lower()
    new = map_call_status(raw) if kind == "call" else map_message_status(raw)
    history = list(m.status_history or [])[-(HISTORY_LIMIT - 1):]
    history.append({"at": now.isoformat(), "status": raw, **({"error_code": error_code} if error_code else {})})
    m.status_history = history
    moves = status_moves_forward(m.status, new)
    if moves or (new == m.status and _RAW_RANK.get(raw, 0) > _RAW_RANK.get(m.provider_status or "", -1)):
        m.provider_status = raw
    if answered_by:
        m.answered_by = answered_by
    if not moves:
        return Applied(m)
    was_bound = m.provider_id is not None
    m.status = new
    m.provider = m.provider or "twilio"
    m.provider_id = sid
    m.sent_at = m.sent_at or now
    m.lease_owner = m.lease_expires_at = None  # a worker still holding it must not overwrite the receipt
    if new in FINAL:
        m.delivered_at = now
    if error_code:
        m.error_code = error_code
    line = None
    if new in (MessageStatus.UNDELIVERED, MessageStatus.FAILED):
        what = describe(error_code) or f"Twilio status {raw}"
        m.status_reason = f"{new}: {what}"
        detail = {"message_id": m.id, "step_id": m.step_id, "error_code": error_code}
        line = (str(new), f"{m.channel} to {m.to_address} {new}: {what}", detail)
        if classify_code(error_code) == "opted_out" and m.channel == "sms" and m.to_address:
            consent.opt_out(session, m.to_address, now=now, reason=f"Twilio {error_code}")
        elif new == MessageStatus.FAILED:
            alerts.notify_admins(session, m, m.status_reason, now)
    elif not was_bound and m.status_reason:
        m.status_reason = None  # a "retrying after a timeout" note no longer applies: it did go out
    return Applied(m, changed=True, log_line=line)
