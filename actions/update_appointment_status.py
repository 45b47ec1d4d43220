"""Step ``update_appointment_status``: set the appointment's status (modified by ``workflow``).

The change goes through the appointments service, so it emits its own event and other workflows
(and cancellation exits) react to it like any other status change.
"""

from __future__ import annotations

from marshmallow import fields, validate

from actions.base import StepSchema, StepType, register
from automations.booking import appointments
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext
from automations.store.states import AppointmentStatus, ModifiedBy


class UpdateStatusSchema(StepSchema):
    status = fields.String(required=True, validate=validate.OneOf([s.value for s in AppointmentStatus]))


@register("update_appointment_status")
class UpdateAppointmentStatus(StepType):
    schema = UpdateStatusSchema

    def run(self, ctx: StepContext) -> Outcome:
        if ctx.appointment is None:
            return Outcome.next("skipped", "skipped: no appointment")
        old = ctx.appointment.status
        new = ctx.step["status"]
        if old == new:
            return Outcome.next("skipped", f"skipped: appointment already {new}")
        appointments.change_status(ctx.session, ctx.appointment, new, modified_by=ModifiedBy.WORKFLOW, now=ctx.now)
        return Outcome.next("done", f"appointment status {old} → {new}")
