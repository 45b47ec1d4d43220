"""Step ``wait_reply``: wait until the contact replies on the channel of a previous send, with an optional
timeout; ``on_reply`` and ``on_timeout`` name where each exit goes (a step id, ``end``, or the next step).

``channel`` ``auto`` (the default) takes the channel of this enrollment's latest message to the contact (a
call or voicemail drop is answered by text, so it means ``sms``); a reply counts from the moment that message
was queued, so an answer that arrived before the workflow reached this step is not missed. Replies come in
through ``automations.outbox.inbound`` (the Twilio inbound webhook), which resumes the wait with a
``contact.replied`` event; opt-out and help keywords are not answers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from marshmallow import fields, validate
from sqlalchemy import select

from actions.base import BranchingWait, StepSchema, branch, register
from actions.timing import SECONDS, TimeoutSchema
from automations.outbox import inbound
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext
from automations.store.models import Message

#: What a reply to a message on each channel comes back as.
REPLY_CHANNEL = {"sms": "sms", "call": "sms", "voicemail": "sms", "email": "email"}


class WaitReplySchema(StepSchema):
    channel = fields.String(load_default="auto", validate=validate.OneOf(["auto", "sms", "email", "any"]))
    timeout = fields.Nested(TimeoutSchema, load_default=None, allow_none=True)
    on_reply = fields.String(load_default=None, allow_none=True)
    on_timeout = fields.String(load_default=None, allow_none=True)


def _previous_send(ctx: StepContext, channels: tuple[str, ...]) -> Message | None:
    return ctx.session.scalars(
        select(Message)
        .where(Message.enrollment_id == ctx.enrollment.id, Message.audience == "contact", Message.channel.in_(channels))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(1)
    ).first()


def _what(ctx: StepContext) -> tuple[str, datetime]:
    """(channel to listen on, replies count from) for this visit of the step."""
    wanted = ctx.step.get("channel", "auto")
    if wanted == "auto":
        previous = _previous_send(ctx, tuple(REPLY_CHANNEL))
        return (REPLY_CHANNEL[previous.channel], previous.created_at) if previous else ("any", ctx.now)
    if wanted == "any":
        previous = _previous_send(ctx, tuple(REPLY_CHANNEL))
    else:
        previous = _previous_send(ctx, tuple(c for c, r in REPLY_CHANNEL.items() if r == wanted))
    return wanted, previous.created_at if previous else ctx.now


@register("wait_reply")
class WaitReply(BranchingWait):
    schema = WaitReplySchema
    exits = ("on_reply", "on_timeout")

    def _replied(self, ctx: StepContext, channel: str, since: datetime) -> Outcome | None:
        reply = inbound.reply_since(ctx.session, ctx.contact.id, channel, since)
        if reply is None:
            return None
        text = reply.body.strip().replace("\n", " ")
        quoted = text[:60] + ("…" if len(text) > 60 else "")
        return branch(ctx, ctx.step.get("on_reply"), "resumed", f"contact replied by {reply.channel}: {quoted!r}")

    def run(self, ctx: StepContext) -> Outcome:
        channel, since = _what(ctx)
        done = self._replied(ctx, channel, since)
        if done is not None:
            return done
        timeout = ctx.step.get("timeout")
        until = ctx.now + timedelta(seconds=timeout["amount"] * SECONDS[timeout["unit"]]) if timeout else None
        on = "any channel" if channel == "any" else channel
        why = f"waiting for a reply by {on}" + (f" until {until.isoformat()}" if until else "")
        return Outcome.wait(until, "reply", why, reply=(channel, since), channel=channel, since=since.isoformat())

    def resume(self, ctx: StepContext, cause: str) -> Outcome:
        enrollment = ctx.enrollment
        if enrollment.reply_channel and enrollment.reply_since:
            channel, since = enrollment.reply_channel, enrollment.reply_since
        else:  # a wait begun before these columns existed and not migrated: listen from now on
            channel, since = _what(ctx)
        done = self._replied(ctx, channel, since)
        if done is not None:
            return done
        wake = ctx.enrollment.wake_at
        if cause == "due" and wake is not None and wake <= ctx.now:
            return branch(ctx, ctx.step.get("on_timeout"), "resumed", "timed out waiting for a reply")
        return Outcome.wait(wake, "reply", "still waiting for a reply", reply=(channel, since), channel=channel,
                            since=since.isoformat())
