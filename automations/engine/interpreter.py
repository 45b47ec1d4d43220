"""The step interpreter: ``advance`` moves one enrollment step by step until a step waits or the
workflow ends, and records every outcome. It is the only place enrollment state changes while a
workflow runs.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from actions import STEP_TYPES, timing
from automations.errors import PunctualError
from automations.runs import enrollments
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext
from automations.runs.workflow_doc import WorkflowDoc, doc_for_version
from automations.settings import Settings
from automations.store.db import get_row
from automations.store.models import Appointment, Contact, Enrollment, Location, WorkflowVersion
from automations.store.states import EnrollmentState

log = logging.getLogger(__name__)

#: Steps one advance may run without waiting; beyond it the run is stopped as a loop.
MAX_STEPS_PER_ADVANCE = 100
#: Outbound messages one enrollment may queue to its contact (``Settings.max_sends_per_enrollment``).
DEFAULT_MAX_SENDS = Settings.max_sends_per_enrollment


def advance(session: Session, enrollment: Enrollment, now: datetime, cause: str = "run", *,
            max_sends: int = DEFAULT_MAX_SENDS) -> None:
    """Run the enrollment from its current step. ``cause`` says whether the current step is being
    arrived at (``run``) or a wait on it is being woken (``due``/``event``). An outbound step
    reached after ``max_sends`` messages to the contact stops the run (a loop that slipped through)."""
    version = get_row(session, WorkflowVersion, enrollment.version_id)
    doc = doc_for_version(version)
    location = get_row(session, Location, enrollment.location_id)
    contact = get_row(session, Contact, enrollment.contact_id)
    appointment = session.get(Appointment, enrollment.appointment_id) if enrollment.appointment_id else None
    resuming = cause in ("due", "event") and enrollment.state == EnrollmentState.WAITING

    for _ in range(MAX_STEPS_PER_ADVANCE):
        step = doc.step(enrollment.step_id)
        if step is None:
            enrollments.finish(session, enrollment, state=EnrollmentState.COMPLETED, reason="workflow finished",
                               now=now, cancel_pending=False)
            return
        ctx = StepContext(session, now, enrollment, doc, step, location, contact, appointment)
        outcome = _run_step(ctx, resuming, cause, max_sends)
        resuming = False
        enrollments.log(session, enrollment, outcome=outcome.log, reason=outcome.reason, now=now, step=step,
                        detail=outcome.detail)
        enrollment.step_seq += 1
        enrollment.updated_at = now
        if _apply(session, enrollment, doc, step, outcome, now):
            return
    enrollments.finish(session, enrollment, state=EnrollmentState.FAILED, now=now, cancel_pending=False,
                       reason=f"failed: more than {MAX_STEPS_PER_ADVANCE} steps without a wait (a goto loop?)")


def _run_step(ctx: StepContext, resuming: bool, cause: str, max_sends: int) -> Outcome:
    stype = STEP_TYPES.get(ctx.step["type"])
    if stype.is_wait and not resuming:
        ctx.enrollment.skip_outbound = False  # reaching a wait ends skip_outbound
    if stype.outbound and ctx.enrollment.skip_outbound:
        return Outcome.next("skipped", "skipped: past-time policy (outbound actions skipped until the next wait)")
    guard = ctx.step.get("skip_if_after")
    if guard and not resuming and ctx.appointment is not None:
        moment = timing.appointment_moment(ctx.appointment.start_at, ctx.appointment_tz(), guard)
        if ctx.now > moment:
            return Outcome.next("skipped", f"skipped: past-time policy: its moment ({moment.isoformat()}, "
                                           "skip_if_after) had passed")
    if stype.outbound and (ctx.enrollment.sends or 0) >= max_sends:
        log.warning("enrollment %s stopped at step %s: send cap of %d reached", ctx.enrollment.id, ctx.step["id"],
                    max_sends)
        return Outcome("exit", "stopped", f"stopped: send cap reached ({max_sends} messages to the contact in this "
                                          "run; PUNCTUAL_MAX_SENDS_PER_ENROLLMENT)")
    try:
        return stype.resume(ctx, cause) if resuming else stype.run(ctx)
    except PunctualError as exc:
        # A step that cannot do its job is logged and passed over; the run goes on.
        log.warning("step %s of enrollment %s failed: %s", ctx.step["id"], ctx.enrollment.id, exc)
        return Outcome.next("failed", f"failed: {exc.message or exc}")


def _apply(session: Session, enrollment: Enrollment, doc: WorkflowDoc, step: dict, outcome: Outcome,
           now: datetime) -> bool:
    """Move the enrollment per the outcome. True when the advance stops here."""
    if outcome.skip_outbound:
        enrollment.skip_outbound = True
    enrollment.reply_channel, enrollment.reply_since = outcome.reply or (None, None)
    if outcome.kind == "wait":
        enrollment.state = EnrollmentState.WAITING
        enrollment.wake_at = outcome.until
        enrollment.wait_kind = outcome.wait_kind
        return True
    enrollment.wait_kind = None
    if outcome.kind == "exit":
        enrollments.finish(session, enrollment, state=EnrollmentState.EXITED, reason=outcome.reason, now=now,
                           cancel_pending=False)
        return True
    if outcome.kind == "end":
        enrollment.step_id = None
    elif outcome.kind == "goto":
        enrollment.step_id = outcome.target
    else:
        enrollment.step_id = doc.next_after(step)
    enrollment.state = EnrollmentState.ACTIVE
    enrollment.wake_at = now
    return False
