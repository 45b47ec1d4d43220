"""Step ``wait_time_delay``: wait N seconds/minutes/hours/days, optionally only resuming inside an
advance window (allowed weekdays and between-hours in the workflow's time zone)."""

from __future__ import annotations

from marshmallow import fields, validate, validates_schema

from actions.base import StepSchema, StepType, register
from actions.timing import WindowSchema, parse_window, reraise_for_marshmallow
from automations.errors import ValidationError
from automations.rendering import timecalc
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext

UNITS = ["seconds", "minutes", "hours", "days"]


class WaitTimeDelaySchema(StepSchema):
    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=10_000_000))
    unit = fields.String(required=True, validate=validate.OneOf(UNITS))
    window = fields.Nested(WindowSchema, load_default=None, allow_none=True)

    @validates_schema
    def _window_valid(self, data: dict, **_kw) -> None:
        try:
            parse_window(data.get("window"))
        except ValidationError as exc:
            raise reraise_for_marshmallow(exc) from exc


@register("wait_time_delay")
class WaitTimeDelay(StepType):
    schema = WaitTimeDelaySchema
    is_wait = True

    def holds(self, step: dict) -> bool:
        return step["amount"] > 0

    def run(self, ctx: StepContext) -> Outcome:
        step = ctx.step
        tz = ctx.workflow_tz()
        until = timecalc.delay_until(ctx.now, amount=step["amount"], unit=step["unit"], window=parse_window(step.get("window")), tz=tz)
        if until <= ctx.now:
            return Outcome.next("resumed", "no wait needed: delay is zero and the window is open")
        return Outcome.wait(until, "time", f"waiting until {until.isoformat()}")

    def resume(self, ctx: StepContext, cause: str) -> Outcome:
        return Outcome.next("resumed", "delay over")
