"""Step ``slack``: a message to a Slack incoming webhook (contract §6), text with merge fields and optional
Block Kit ``blocks`` (their string values are templates). Not outbound. Delivered through the outbox by
``providers.http_actions.SlackWebhookSender``: 429 honours ``Retry-After``, 5xx retries, and a dead webhook
(``no_service``, ``channel_is_archived`` …) fails at once and alerts the admins."""

from __future__ import annotations

from marshmallow import fields, validate

from actions.base import StepSchema, StepType, register
from actions.sending import queue_to_contact
from actions.webhook import HTTP_URL
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


class SlackSchema(StepSchema):
    webhook_url = fields.String(required=True, validate=[validate.Length(max=2000), HTTP_URL])
    text = fields.String(required=True, validate=validate.Length(min=1, max=40_000))
    blocks = fields.List(fields.Dict(), load_default=None, allow_none=True, validate=validate.Length(max=50))


@register("slack")
class Slack(StepType):
    schema = SlackSchema
    template_fields = ("text", "blocks")

    def run(self, ctx: StepContext) -> Outcome:
        step = ctx.step
        template = {"webhook_url": step["webhook_url"], "text": step["text"], "blocks": step.get("blocks")}
        return queue_to_contact(ctx, "slack", "slack", template, "Slack message queued", outbound=False)
