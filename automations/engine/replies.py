"""Replies that move enrollments: a ``contact.replied`` event ends "stop on response" enrollments and resumes
``wait_reply`` steps (a keyword for opting out or for help is not an answer). Lives in the engine because
resuming means running the interpreter; the outbox only records the reply (``automations.outbox.inbound``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.engine import interpreter
from automations.outbox.inbound import REPLY_INTENTS
from automations.runs import enrollments
from automations.runs.workflow_doc import doc_for_version
from automations.store.models import Enrollment, WorkflowVersion
from automations.store.states import EnrollmentState


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
            interpreter.advance(session, enrollment, now, cause="event")
