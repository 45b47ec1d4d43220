"""Step ``wait_appointment_time``: wait until a time before or after the appointment's start
(or exactly at it). When that time has already passed on arrival, the step's past-time policy
decides: ``next``, ``goto`` a step, or ``skip_outbound`` until the next wait."""

from __future__ import annotations

from datetime import datetime

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from actions.base import StepSchema, StepType, register
from actions.timing import AppointmentOffsetFields, appointment_moment
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext
from automations.store.models import Appointment


class IfPastSchema(Schema):
    class Meta:
        unknown = RAISE

    action = fields.String(load_default="next", validate=validate.OneOf(["next", "goto", "skip_outbound"]))
    target = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _target_for_goto(self, data: dict, **_kw) -> None:
        if data.get("action") == "goto" and not data.get("target"):
            raise MarshmallowError("required when action is goto", "target")


class WaitAppointmentTimeSchema(StepSchema, AppointmentOffsetFields):
    if_past = fields.Nested(IfPastSchema, load_default=lambda: IfPastSchema().load({}))


def wait_target(ctx: StepContext, appointment: Appointment) -> datetime:
    return appointment_moment(appointment.start_at, ctx.appointment_tz(), ctx.step)


@register("wait_appointment_time")
class WaitAppointmentTime(StepType):
    schema = WaitAppointmentTimeSchema
    is_wait = True

    def targets(self, step: dict) -> dict[str, str]:
        if_past = step.get("if_past") or {}
        return {"if_past.target": if_past["target"]} if if_past.get("action") == "goto" else {}

    def run(self, ctx: StepContext) -> Outcome:
        if ctx.appointment is None:
            return Outcome.next("skipped", "skipped: no appointment to wait for")
        until = wait_target(ctx, ctx.appointment)
        if until > ctx.now:
            return Outcome.wait(until, "appointment_time", f"waiting until {until.isoformat()}")
        policy = ctx.step["if_past"]
        why = f"past-time policy: {until.isoformat()} had already passed"
        if policy["action"] == "goto":
            return Outcome.goto(policy["target"], "skipped", f"skipped: {why}; moving to {policy['target']}")
        if policy["action"] == "skip_outbound":
            return Outcome("next", "skipped", f"skipped: {why}; skipping outbound actions until the next wait", skip_outbound=True)
        return Outcome.next("skipped", f"skipped: {why}; moving to the next step")

    def resume(self, ctx: StepContext, cause: str) -> Outcome:
        return Outcome.next("resumed", "appointment time reached")
