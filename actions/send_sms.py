"""Step ``send_sms``: a text to the contact's primary phone, through the outbox."""

from __future__ import annotations

from marshmallow import fields, validate

from actions.base import StepSchema, StepType, register
from actions.sending import queue_to_contact, sender
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


class SendSmsSchema(StepSchema):
    body = fields.String(required=True, validate=validate.Length(min=1, max=1600))
    from_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    media_urls = fields.List(fields.Url(schemes={"https", "http"}), load_default=list, validate=validate.Length(max=10))


@register("send_sms")
class SendSms(StepType):
    schema = SendSmsSchema
    outbound = True
    template_fields = ("body",)

    def run(self, ctx: StepContext) -> Outcome:
        contact = ctx.contact
        if not contact.phone:
            return Outcome.next("skipped", "skipped: contact has no phone number")
        if contact.sms_dnd:
            return Outcome.next("skipped", "skipped: contact opted out of SMS")
        template = {"body": ctx.step["body"], "media_urls": ctx.step.get("media_urls") or [], **sender(ctx, ctx.step, "from_number")}
        return queue_to_contact(ctx, "sms", contact.phone, template, f"SMS queued to {contact.phone}")
