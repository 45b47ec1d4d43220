"""Step ``send_email``: an email to the contact's primary address, through the outbox."""

from __future__ import annotations

from marshmallow import fields, validate

from actions.base import StepSchema, StepType, register
from actions.sending import queue_to_contact, sender
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


class SendEmailSchema(StepSchema):
    subject = fields.String(required=True, validate=validate.Length(min=1, max=998))
    body = fields.String(required=True, validate=validate.Length(min=1, max=100_000))
    html = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200_000))
    from_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    from_email = fields.Email(load_default=None, allow_none=True)
    reply_to = fields.Email(load_default=None, allow_none=True)
    cc = fields.List(fields.String(validate=validate.Length(max=320)), load_default=list, validate=validate.Length(max=20))
    bcc = fields.List(fields.String(validate=validate.Length(max=320)), load_default=list, validate=validate.Length(max=20))


@register("send_email")
class SendEmail(StepType):
    schema = SendEmailSchema
    outbound = True
    template_fields = ("subject", "body", "html")

    def run(self, ctx: StepContext) -> Outcome:
        contact = ctx.contact
        if not contact.email:
            return Outcome.next("skipped", "skipped: contact has no email address")
        if contact.email_dnd:
            return Outcome.next("skipped", "skipped: contact opted out of email")
        step = ctx.step
        template = {
            "subject": step["subject"],
            "body": step["body"],
            "html": step.get("html"),
            **sender(ctx, step, "from_name", "from_email"),
            "reply_to": step.get("reply_to"),
            "cc": step.get("cc") or [],
            "bcc": step.get("bcc") or [],
        }
        return queue_to_contact(ctx, "email", contact.email, template, f"email queued to {contact.email}")
