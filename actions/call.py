"""Step ``call`` (Twilio Voice): ring the appointment's assigned user, whisper who and why, then connect
them to the contact. Outbound (skipped by ``skip_outbound``), through the outbox like every send."""

from __future__ import annotations

from marshmallow import fields, validate

from actions.base import StepSchema, StepType, register
from actions.sending import queue_to_contact, sender
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext

DEFAULT_WHISPER = "Call with {{contact.name}} about {{appointment.title}}. Connecting you now."


class CallSchema(StepSchema):
    whisper = fields.String(load_default=DEFAULT_WHISPER, validate=validate.Length(min=1, max=1000))
    from_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    ring_timeout = fields.Integer(load_default=30, strict=True, validate=validate.Range(min=5, max=600))


@register("call")
class Call(StepType):
    schema = CallSchema
    outbound = True
    template_fields = ("whisper",)

    def run(self, ctx: StepContext) -> Outcome:
        contact, user = ctx.contact, ctx.assigned_user
        if not contact.phone:
            return Outcome.next("skipped", "skipped: contact has no phone number")
        if user is None:
            return Outcome.next("skipped", "skipped: the appointment has no assigned user to connect")
        if not user.phone:
            return Outcome.next("skipped", f"skipped: {user.name or 'the assigned user'} has no phone number")
        template = {"whisper": ctx.step["whisper"], "user_phone": user.phone, "ring_timeout": ctx.step["ring_timeout"],
                    **sender(ctx, ctx.step, "from_number")}
        return queue_to_contact(ctx, "call", contact.phone, template,
                                f"call queued: {user.name or user.phone} to {contact.phone}", user_id=user.id)

