"""Step ``goto``: jump to another step by id."""

from __future__ import annotations

from marshmallow import fields

from actions.base import StepSchema, StepType, register
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


class GotoSchema(StepSchema):
    target = fields.String(required=True)


@register("goto")
class Goto(StepType):
    schema = GotoSchema

    def targets(self, step: dict) -> dict[str, str]:
        return {"target": step["target"]}

    def successors(self, step: dict) -> list[str | None]:
        return [step["target"]]

    def run(self, ctx: StepContext) -> Outcome:
        return Outcome.goto(ctx.step["target"], "moved", f"going to {ctx.step['target']}")
