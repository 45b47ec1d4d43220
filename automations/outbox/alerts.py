"""The workflow error notification: when a message fails for good, the location's admins hear about it,
in the app (the notification bell) and by email, once.

The alerts are outbox messages themselves (channels ``in_app`` and ``email``, audience ``user``), so they
go through the same providers, retries and captures as everything else. Their idempotency keys name the
failed message, the admin and the channel, so however often a failure is recorded (a late duplicate
receipt, a re-run) each admin is told once. An alert that fails is not alerted about.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.store.models import Enrollment, Message, User, Workflow
from automations.store.states import MessageStatus

ALERT_KIND = "alert"
CHANNEL_LABEL = {"email": "email", "sms": "text", "in_app": "in-app notification", "call": "call",
                 "voicemail": "voicemail drop", "webhook": "webhook", "slack": "Slack message"}


def is_alert(m: Message) -> bool:
    return (m.template or {}).get("kind") == ALERT_KIND


def notify_admins(session: Session, failed: Message, reason: str, now: datetime) -> int:
    """Queue the failure alert for every admin of the message's location. Returns how many were queued."""
    if is_alert(failed):
        return 0
    admins = list(session.scalars(
        select(User).where(User.location_id == failed.location_id, User.role == "admin").order_by(User.id)
    ))
    if not admins:
        return 0
    workflow = None
    if failed.enrollment_id:
        enrollment = session.get(Enrollment, failed.enrollment_id)
        workflow = session.get(Workflow, enrollment.workflow_id) if enrollment else None
    what = CHANNEL_LABEL.get(failed.channel, failed.channel)
    where = f"workflow '{workflow.name}'" if workflow else "Punctual"
    title = f"A {what} from {where} could not be delivered"
    lines = [f"The {what} to {failed.to_address or 'the recipient'}"
             + (f" (step '{failed.step_id}')" if failed.step_id else "") + " failed for good.",
             f"Reason: {reason}"]
    if failed.error_code:
        lines.append(f"Provider error code: {failed.error_code}")
    lines.append(f"Message id: {failed.id}")
    body = "\n".join(lines)
    keys = {f"alert:{failed.id}:{a.id}:{channel}" for a in admins for channel in ("in_app", "email")}
    existing = set(session.scalars(select(Message.idempotency_key).where(Message.idempotency_key.in_(keys))))
    queued = 0
    for admin in admins:
        for channel, address in (("in_app", admin.id), ("email", admin.email)):
            key = f"alert:{failed.id}:{admin.id}:{channel}"
            if not address or key in existing:
                continue
            session.add(Message(
                location_id=failed.location_id, idempotency_key=key, channel=channel, audience="user",
                user_id=admin.id, to_address=address, outbound=False,
                template={"subject": title, "body": body, "kind": ALERT_KIND, "literal": True,
                          "failed_message_id": failed.id},
                status=MessageStatus.PENDING, due_at=now, created_at=now,
            ))
            queued += 1
    return queued
