"""Step ``if_else``: the first branch whose condition is true wins; otherwise ``else``.

Conditions see contact, appointment (including ``rescheduled``), user and dates
(``automations.runs.conditions``). A branch names the step to go to; ``otherwise`` (default: the next step) is the else.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from actions.base import END, StepSchema, StepType, branch, register
from automations.runs import conditions
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


class BranchSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(load_default="", validate=validate.Length(max=200))
    condition = fields.Nested(conditions.ConditionSchema, required=True)
    target = fields.String(required=True)


class IfElseSchema(StepSchema):
    branches = fields.List(fields.Nested(BranchSchema), required=True, validate=validate.Length(min=1, max=20))
    otherwise = fields.String(load_default=None, allow_none=True)


@register("if_else")
class IfElse(StepType):
    schema = IfElseSchema

    def targets(self, step: dict) -> dict[str, str]:
        refs = {f"branches[{i}].target": b["target"] for i, b in enumerate(step["branches"]) if b["target"] != END}
        if step.get("otherwise") not in (None, END):
            refs["otherwise"] = step["otherwise"]
        return refs

    def successors(self, step: dict) -> list[str | None]:
        return [b["target"] for b in step["branches"]] + [step.get("otherwise")]

    def conditions(self, step: dict) -> dict[str, dict]:
        return {f"branches[{i}].condition": b["condition"] for i, b in enumerate(step["branches"])}

    def run(self, ctx: StepContext) -> Outcome:
        facts = ctx.facts()
        for i, br in enumerate(ctx.step["branches"]):
            if conditions.evaluate(br["condition"], facts):
                label = br.get("name") or f"branch {i + 1}"
                return branch(ctx, br["target"], "moved", f"{label} matched")
        return branch(ctx, ctx.step.get("otherwise"), "moved", "no branch matched: otherwise")
