"""Step ``remove_from_workflow``: end this enrollment, or the contact's live run in another workflow."""

from __future__ import annotations

from marshmallow import fields

from actions.base import StepSchema, StepType, register
from automations.runs import enrollments
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


class RemoveSchema(StepSchema):
    workflow = fields.String(load_default="current")


@register("remove_from_workflow")
class RemoveFromWorkflow(StepType):
    schema = RemoveSchema

    def successors(self, step: dict) -> list[str | None]:
        return [] if step["workflow"] == "current" else [None]

    def run(self, ctx: StepContext) -> Outcome:
        target = ctx.step["workflow"]
        if target in ("current", ctx.enrollment.workflow_id):
            return Outcome.exit("removed from workflow by step")
        count = enrollments.exit_contact_from_workflow(
            ctx.session, workflow_id=target, contact_id=ctx.contact.id, location_id=ctx.location.id,
            reason=f"removed by workflow {ctx.enrollment.workflow_id}", now=ctx.now,
        )
        return Outcome.next("done", f"removed contact from workflow {target} ({count} run(s) ended)")
