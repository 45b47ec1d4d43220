"""Step ``wait_condition``: wait until a condition on contact/appointment fields holds, with an
optional timeout; names where to go on success (``on_true``) and on timeout (``on_timeout``)."""

from __future__ import annotations

from datetime import timedelta

from marshmallow import fields

from actions.base import BranchingWait, StepSchema, branch, register
from actions.timing import SECONDS, TimeoutSchema
from automations.runs import conditions
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


class WaitConditionSchema(StepSchema):
    condition = fields.Nested(conditions.ConditionSchema, required=True)
    timeout = fields.Nested(TimeoutSchema, load_default=None, allow_none=True)
    on_true = fields.String(load_default=None, allow_none=True)
    on_timeout = fields.String(load_default=None, allow_none=True)


@register("wait_condition")
class WaitCondition(BranchingWait):
    schema = WaitConditionSchema
    exits = ("on_true", "on_timeout")

    def conditions(self, step: dict) -> dict[str, dict]:
        return {"condition": step["condition"]}

    def run(self, ctx: StepContext) -> Outcome:
        if conditions.evaluate(ctx.step["condition"], ctx.facts()):
            return branch(ctx, ctx.step.get("on_true"), "resumed", "condition already true")
        timeout = ctx.step.get("timeout")
        until = ctx.now + timedelta(seconds=timeout["amount"] * SECONDS[timeout["unit"]]) if timeout else None
        why = f"waiting for condition until {until.isoformat()}" if until else "waiting for condition"
        return Outcome.wait(until, "condition", why)

    def resume(self, ctx: StepContext, cause: str) -> Outcome:
        if conditions.evaluate(ctx.step["condition"], ctx.facts()):
            return branch(ctx, ctx.step.get("on_true"), "resumed", "condition became true")
        wake = ctx.enrollment.wake_at
        if cause == "due" and wake is not None and wake <= ctx.now:
            return branch(ctx, ctx.step.get("on_timeout"), "resumed", "timed out waiting for condition")
        return Outcome.wait(wake, "condition", "condition still false")
