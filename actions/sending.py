"""What every sending step shares: where the sender details come from, and queueing to the contact."""

from __future__ import annotations

from typing import Any

from automations.rendering import time_window
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext


def sender(ctx: StepContext, step: dict, *keys: str) -> dict:
    """Sender fields (``from_name``, ``from_email``, ``from_number``): the step's own values, else the
    workflow settings'."""
    return {k: step.get(k) or ctx.settings.get(k) for k in keys}


def queue_to_contact(ctx: StepContext, channel: str, to_address: str, template: dict, what: str,
                     **kw: Any) -> Outcome:
    """Queue one message to the contact in the outbox; the outcome reads ``what`` (plus a note when a send
    window holds the message) and names the message."""
    msg = ctx.queue_message(channel=channel, audience="contact", to_address=to_address, template=template, **kw)
    return Outcome.next("queued", what + time_window.held_note(msg, ctx.now), message_id=msg.id)
