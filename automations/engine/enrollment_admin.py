"""A person's hand on a run: remove an enrollment from its workflow, or move it to a step.

Both lock the enrollment row first (a worker advancing it holds the same lock), refuse a run that is
over (409), write the enrollment log with who did it, and leave the running to the worker: a moved
enrollment is due at once and arrives at its new step as if it had just got there (a wait starts
afresh, a send sends under a new idempotency key).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.errors import Conflict, NotFound, ValidationError
from automations.runs import enrollments
from automations.runs.workflow_doc import doc_for_version
from automations.store.models import Enrollment, WorkflowVersion
from automations.store.states import LIVE_ENROLLMENT_STATES, EnrollmentState


def _locked_live(session: Session, enrollment_id: str) -> Enrollment:
    enrollment = session.scalar(select(Enrollment).where(Enrollment.id == enrollment_id).with_for_update())
    if enrollment is None:
        raise NotFound(f"no enrollment {enrollment_id!r}")
    if enrollment.state not in LIVE_ENROLLMENT_STATES:
        raise Conflict(f"this enrollment is already {enrollment.state}", fields={"state": [enrollment.state]})
    return enrollment


def remove(session: Session, enrollment_id: str, *, by: str, now: datetime) -> Enrollment:
    """End the run now (exited); its unsent messages are withdrawn."""
    enrollment = _locked_live(session, enrollment_id)
    enrollments.finish(session, enrollment, state=EnrollmentState.EXITED, reason=f"removed from the workflow by {by}",
                       now=now, cancel_pending=True)
    return enrollment


def move(session: Session, enrollment_id: str, step_id: str, *, by: str, now: datetime) -> Enrollment:
    """Put the run on ``step_id`` of its own workflow version, due now."""
    enrollment = _locked_live(session, enrollment_id)
    doc = doc_for_version(session.get(WorkflowVersion, enrollment.version_id))
    step = doc.step(step_id)
    if step is None:
        known = ", ".join(s["id"] for s in doc.steps)
        raise ValidationError.single("step_id", f"no step {step_id!r} in version's steps ({known})")
    previous = enrollment.step_id
    enrollment.step_id = step_id
    enrollment.state = EnrollmentState.ACTIVE
    enrollment.wake_at = now
    enrollment.wait_kind = None
    enrollment.skip_outbound = False
    enrollment.step_seq += 1  # new idempotency keys: a send moved back to runs again
    enrollment.updated_at = now
    enrollments.log(session, enrollment, outcome="moved", now=now, step=step,
                    reason=f"moved from step {previous or '(end)'} to step {step_id} by {by}")
    return enrollment
