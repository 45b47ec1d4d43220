"""Step ``voicemail``: a voicemail drop (Twilio Voice). The contact's phone is called with answering-machine
detection; once the greeting ends the recording at ``audio_url`` is played. A person who picks up hears
``human_message`` if one is set (else the recording). Outbound, through the outbox."""

from __future__ import annotations

from marshmallow import fields, validate

from actions.base import StepSchema, StepType, register
from actions.sending import queue_to_contact, sender
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


class VoicemailSchema(StepSchema):
    audio_url = fields.Url(required=True, schemes={"https", "http"}, validate=validate.Length(max=2000))
    human_message = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    from_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))


@register("voicemail")
class Voicemail(StepType):
    schema = VoicemailSchema
    outbound = True
    template_fields = ("human_message",)

    def run(self, ctx: StepContext) -> Outcome:
        contact = ctx.contact
        if not contact.phone:
            return Outcome.next("skipped", "skipped: contact has no phone number")
        template = {"audio_url": ctx.step["audio_url"], "human_message": ctx.step.get("human_message"),
                    **sender(ctx, ctx.step, "from_number")}
        return queue_to_contact(ctx, "voicemail", contact.phone, template,
                                f"voicemail drop queued to {contact.phone}")
