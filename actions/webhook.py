"""Step ``webhook``: an HTTP request to any URL (method, headers, optional Basic/Bearer auth, a body with
merge fields). Not outbound: it runs while ``skip_outbound`` is on, and quiet hours do not hold it.

``body`` is either a string template or a JSON object/array whose string values are templates (rendered
one by one, so a contact's name with a quote in it cannot break the JSON). The request goes through the
outbox (rendered at send time, retried on 408/429/5xx and network errors, an ``Idempotency-Key`` header
naming the outbox row) and is sent by ``providers.http_actions.WebhookSender``.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from actions.base import StepSchema, StepType, register
from actions.sending import queue_to_contact
from automations.runs.outcomes import Outcome
from automations.runs.step_context import StepContext

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
HTTP_URL = validate.Regexp(r"^https?://[^\s]+$", error="must be an http:// or https:// URL")
HEADER_NAME = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$"


class AuthSchema(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(required=True, validate=validate.OneOf(["basic", "bearer"]))
    username = fields.String(load_default="", validate=validate.Length(max=500))
    password = fields.String(load_default="", validate=validate.Length(max=500))
    token = fields.String(load_default="", validate=validate.Length(max=4000))

    @validates_schema
    def _complete(self, data: dict, **_kw) -> None:
        if data["type"] == "bearer" and not data.get("token"):
            raise MarshmallowError("a bearer token is required", "token")
        if data["type"] == "basic" and not data.get("username"):
            raise MarshmallowError("a username is required", "username")


class JsonBody(fields.Field):
    """A string template, or a JSON object/array (string values are templates)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if value is None or isinstance(value, str | dict | list):
            if isinstance(value, str) and len(value) > 100_000:
                raise MarshmallowError("is longer than 100000 characters")
            return value
        raise MarshmallowError("must be a string, an object or an array")


class WebhookSchema(StepSchema):
    url = fields.String(required=True, validate=[validate.Length(max=2000), HTTP_URL])
    method = fields.String(load_default="POST", validate=validate.OneOf(METHODS))
    headers = fields.Dict(keys=fields.String(validate=validate.Regexp(HEADER_NAME, error="not a valid header name")),
                          values=fields.String(validate=validate.Length(max=4000)), load_default=dict,
                          validate=validate.Length(max=50))
    body = JsonBody(load_default=None, allow_none=True)
    auth = fields.Nested(AuthSchema, load_default=None, allow_none=True)


@register("webhook")
class Webhook(StepType):
    schema = WebhookSchema
    template_fields = ("url", "body")

    def run(self, ctx: StepContext) -> Outcome:
        step = ctx.step
        template = {"url": step["url"], "method": step["method"], "headers": step.get("headers") or {},
                    "body": step.get("body"), "auth": step.get("auth")}
        return queue_to_contact(ctx, "webhook", step["url"][:2000], template, f"webhook {step['method']} queued",
                                outbound=False)
