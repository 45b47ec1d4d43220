"""Step ``internal_notification``: tell staff (or custom addresses) by email, SMS or in-app.

Not outbound: it still runs while skip_outbound is on.
"""

from __future__ import annotations

from marshmallow import ValidationError as MarshmallowError
from marshmallow import fields, validate, validates_schema
from sqlalchemy import select

from actions.base import StepSchema, StepType, register
from actions.sending import sender
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext
from automations.store.models import User

RECIPIENTS = ["assigned_user", "all_users", "users", "custom"]


class InternalNotificationSchema(StepSchema):
    channel = fields.String(required=True, validate=validate.OneOf(["email", "sms", "in_app"]))
    recipients = fields.String(load_default="assigned_user", validate=validate.OneOf(RECIPIENTS))
    user_ids = fields.List(fields.String(), load_default=list, validate=validate.Length(max=100))
    emails = fields.List(fields.Email(), load_default=list, validate=validate.Length(max=50))
    phones = fields.List(fields.String(validate=validate.Length(min=5, max=32)), load_default=list, validate=validate.Length(max=50))
    subject = fields.String(load_default="", validate=validate.Length(max=998))
    body = fields.String(required=True, validate=validate.Length(min=1, max=100_000))
    from_name = fields.String(load_default=None, allow_none=True)
    from_email = fields.Email(load_default=None, allow_none=True)
    from_number = fields.String(load_default=None, allow_none=True)

    @validates_schema
    def _recipients_given(self, data: dict, **_kw) -> None:
        if data.get("recipients") == "users" and not data.get("user_ids"):
            raise MarshmallowError("name at least one user", "user_ids")
        if data.get("recipients") == "custom":
            if data.get("channel") == "in_app":
                raise MarshmallowError("in-app notifications go to users, not custom addresses", "recipients")
            key = "emails" if data.get("channel") == "email" else "phones"
            if not data.get(key):
                raise MarshmallowError(f"name at least one address for channel {data.get('channel')}", key)


@register("internal_notification")
class InternalNotification(StepType):
    schema = InternalNotificationSchema
    template_fields = ("subject", "body")

    def _users(self, ctx: StepContext) -> list[User]:
        kind = ctx.step["recipients"]
        if kind == "assigned_user":
            return [ctx.assigned_user] if ctx.assigned_user else []
        query = select(User).where(User.location_id == ctx.location.id)
        if kind == "users":
            query = query.where(User.id.in_(ctx.step["user_ids"]))
        return list(ctx.session.scalars(query.order_by(User.id)))

    def run(self, ctx: StepContext) -> Outcome:
        step, channel = ctx.step, ctx.step["channel"]
        template = {
            "subject": step.get("subject") or "",
            "body": step["body"],
            **sender(ctx, step, "from_name", "from_email", "from_number"),
        }
        targets: list[tuple[str | None, str | None, str]] = []  # (user_id, address, audience)
        skipped: list[str] = []
        if step["recipients"] == "custom":
            addresses = step["emails"] if channel == "email" else step["phones"]
            targets = [(None, a, "custom") for a in addresses]
        else:
            for user in self._users(ctx):
                address = {"email": user.email, "sms": user.phone, "in_app": user.id}[channel]
                if address:
                    targets.append((user.id, address, "user"))
                else:
                    skipped.append(f"{user.name or user.id} has no {channel}")
        if not targets:
            why = "; ".join(skipped) or f"no {step['recipients'].replace('_', ' ')} to notify"
            return Outcome.next("skipped", f"skipped: {why}")
        for i, (user_id, address, audience) in enumerate(targets):
            ctx.queue_message(
                channel=channel, audience=audience, to_address=address, template=template,
                suffix=str(i), user_id=user_id, outbound=False,
            )
        reason = f"{channel} notification queued for {len(targets)} recipient(s)"
        if skipped:
            reason += f" (skipped: {'; '.join(skipped)})"
        return Outcome.next("queued", reason)
