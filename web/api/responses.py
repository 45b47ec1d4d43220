"""Response bodies as marshmallow schemas: the one place an API object's fields are written down.

Views dump rows (or dicts of rows' values plus what was joined in) through these schemas, and
``web.openapi`` turns the same classes into the OpenAPI components, so a field cannot be served
without being documented, nor documented without being served (a dumped object carries only the
declared fields; every declared field is ``required`` in the document and checked by the
schemathesis run). Field names follow the API, not the tables: ``start_at`` is ``start_time``.
"""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import Schema, fields

#: Every response schema class, for ``web.openapi`` (all their fields are always present).
RESPONSE_SCHEMAS: list[type[Schema]] = []


class Reply(Schema):
    """Base of every response body: registered for the document; every field always present."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        RESPONSE_SCHEMAS.append(cls)


def _str(**kw: Any) -> fields.String:
    return fields.String(**kw)


def _opt_str(**kw: Any) -> fields.String:
    return fields.String(allow_none=True, **kw)


def _at(**kw: Any) -> fields.DateTime:
    return fields.DateTime(**kw)


def _opt_at(**kw: Any) -> fields.DateTime:
    return fields.DateTime(allow_none=True, **kw)


class ContactOut(Reply):
    id = _str()
    first_name = _str()
    last_name = _str()
    name = _str()
    email = _opt_str()
    phone = _opt_str()
    timezone = _opt_str()
    tags = fields.List(fields.String())
    custom_fields = fields.Dict()
    sms_dnd = fields.Boolean()
    email_dnd = fields.Boolean()
    created_at = _at()
    updated_at = _at()


class CalendarOut(Reply):
    id = _str()
    name = _str()
    slug = _str()
    kind = _str()
    timezone = _opt_str()
    slot_minutes = fields.Integer()
    appointments_per_slot = fields.Integer()
    meeting_location = _opt_str()
    auto_confirm = fields.Boolean()
    slot_interval_minutes = fields.Integer(allow_none=True, metadata={"description": "null: the slot length"})
    buffer_before_minutes = fields.Integer()
    buffer_after_minutes = fields.Integer()
    min_notice_minutes = fields.Integer()
    booking_window_days = fields.Integer(allow_none=True, metadata={"description": "null: no limit"})
    title_template = _opt_str()
    description = _str()
    created_at = _at()


class CalendarMemberOut(Reply):
    user_id = _str()
    name = _str()
    email = _opt_str()
    position = fields.Integer()
    meeting_location = _opt_str(metadata={"description": '"zoom", a static link or text, or null (the calendar\'s)'})
    priority = fields.Integer()
    availability = fields.Dict(allow_none=True, metadata={"description": "weekly hours in the member's zone"})
    date_overrides = fields.Dict(allow_none=True)
    google_calendar_id = _opt_str()


class CalendarDetailOut(CalendarOut):
    availability = fields.Dict()
    date_overrides = fields.Dict()
    members = fields.List(fields.Nested(CalendarMemberOut))


class FreeSlotOut(Reply):
    start_time = _at()
    end_time = _at()
    local_start = _str()
    hosts = fields.List(fields.String())


class FreeSlotsOut(Reply):
    timezone = _str()
    items = fields.List(fields.Nested(FreeSlotOut))


class BusyTimeOut(Reply):
    start_time = _at()
    end_time = _at()
    title = _str()
    source = _str()


class BusyTimesOut(Reply):
    items = fields.List(fields.Nested(BusyTimeOut))


class GoogleAuthorizationOut(Reply):
    authorize_url = _str()
    expires_at = _at()


class GoogleConnectionInfoOut(Reply):
    status = _str()
    status_reason = _opt_str()
    connected_at = _opt_at()


class GoogleCalendarInfoOut(Reply):
    id = _str()
    summary = _str()
    primary = fields.Boolean()
    time_zone = _opt_str()


class GoogleCalendarListOut(Reply):
    items = fields.List(fields.Nested(GoogleCalendarInfoOut))


class MeetingInfoOut(Reply):
    state = _str()
    provider = _opt_str()
    join_url = _opt_str()
    error = _opt_str()


class AppointmentOut(Reply):
    id = _str()
    calendar_id = _str()
    contact_id = _str()
    assigned_user_id = _opt_str()
    title = _str()
    status = _str()
    start_time = _at()
    end_time = _at()
    timezone = _str()
    notes = _str()
    is_recurring = fields.Boolean()
    rescheduled = fields.Boolean()
    record_past = fields.Boolean(metadata={"description": "recorded after the fact: no meeting, no confirmations"})
    recurrence_id = _opt_str(metadata={"description": "shared by the occurrences of one recurring booking"})
    meeting = fields.Nested(MeetingInfoOut)
    meeting_location = _opt_str()
    created_at = _at()
    updated_at = _at()


class AppointmentSeriesOut(Reply):
    recurrence_id = _str()
    items = fields.List(fields.Nested(AppointmentOut))


class WorkflowOut(Reply):
    id = _str()
    name = _str()
    status = _str()
    current_version = fields.Integer(allow_none=True)
    published_at = _opt_at()
    created_at = _at()
    updated_at = _at()


class WorkflowVersionInfoOut(Reply):
    number = fields.Integer()
    published_at = _at()


class WorkflowDetailOut(WorkflowOut):
    versions = fields.List(fields.Nested(WorkflowVersionInfoOut))
    draft = fields.Dict(metadata={"description": "the draft workflow document (see WorkflowDocument)"})


class ProblemOut(Reply):
    path = _str(metadata={"description": "JSON path into the document, e.g. steps[2].body"})
    message = _str()


class ValidationResultOut(Reply):
    valid = fields.Boolean()
    problems = fields.List(fields.Nested(ProblemOut), metadata={"description": "every problem at once"})


class TimelineEntryOut(Reply):
    step_id = _opt_str()
    step_type = _opt_str()
    step_name = _str()
    outcome = _str(metadata={"description": "what the engine logged: queued, skipped, waiting, resumed, ..."})
    reason = _str()
    at = _str(metadata={"description": "ISO 8601, UTC"})
    at_local = _str(metadata={"description": "ISO 8601 in the contact's time zone"})
    skipped = _opt_str(metadata={"description": "past_time | opt_out | send_cap | no_address | other"})
    channel = _opt_str()
    send_at = _opt_str()
    send_at_local = _opt_str()
    held_by_quiet_hours = fields.Boolean()


class TimelineOut(Reply):
    trigger_matched = fields.Boolean()
    entries = fields.List(fields.Nested(TimelineEntryOut))
    final_state = _str()
    notes = fields.List(fields.String())


class RenderedMessageOut(Reply):
    channel = _str()
    audience = _str()
    to = _opt_str()
    subject = _opt_str()
    body = _str()
    html = _opt_str()
    timezone = _str(metadata={"description": "the recipient's time zone the times are written in"})
    meeting_location = _opt_str(metadata={"description": "null while the meeting link is not ready"})


class PreviewOut(Reply):
    step_id = _str()
    step_type = _str()
    messages = fields.List(fields.Nested(RenderedMessageOut),
                           metadata={"description": "what the step would send (one per recipient)"})


class RecipeOut(Reply):
    slug = _str()
    title = _str()
    description = _str()
    steps = fields.Integer()


class EnrollmentOut(Reply):
    id = _str()
    workflow_id = _str()
    version = fields.Integer(allow_none=True)
    appointment_id = _opt_str()
    contact_id = _str()
    state = _str()
    trigger_status = _opt_str()
    step_id = _opt_str()
    wait_kind = _opt_str()
    wake_at = _opt_at()
    rescheduled = fields.Boolean()
    exit_reason = _opt_str()
    created_at = _at()
    updated_at = _at()
    finished_at = _opt_at()


class EnrollmentLogLineOut(Reply):
    step_id = _opt_str()
    step_type = _opt_str()
    outcome = _str()
    reason = _str()
    at = _at()


class EnrollmentDetailOut(EnrollmentOut):
    log = fields.List(fields.Nested(EnrollmentLogLineOut))


class MessageOut(Reply):
    id = _str()
    channel = _str()
    audience = _str()
    to = _opt_str()
    contact_id = _opt_str()
    user_id = _opt_str()
    appointment_id = _opt_str()
    enrollment_id = _opt_str()
    step_id = _opt_str()
    subject = _opt_str(metadata={"description": "rendered at send time from current data: null until then"})
    body = _opt_str(metadata={"description": "rendered at send time from current data: null until then"})
    status = _str()
    status_reason = _opt_str()
    provider = _opt_str()
    provider_id = _opt_str()
    error_code = _opt_str()
    attempts = fields.Integer()
    due_at = _at()
    created_at = _at()
    sent_at = _opt_at()
    provider_status = _opt_str(metadata={"description": "the provider's own last status (Twilio: queued, sent, "
                                                        "delivered, ...)"})
    delivered_at = _opt_at()
    test = fields.Boolean(metadata={"description": "a test send from the builder (outside any enrollment)"})


class TestSendOut(Reply):
    messages = fields.List(fields.Nested(MessageOut), metadata={"description": "the outbox rows written"})


class NotificationOut(Reply):
    id = _str()
    user_id = _str()
    message_id = _opt_str()
    title = _str()
    body = _str()
    read = fields.Boolean()
    created_at = _at()
    read_at = _opt_at()


class ZoomConnectionInfoOut(Reply):
    status = _str(metadata={"description": "active, broken, disconnecting or not_connected"})
    email = _opt_str()
    status_reason = _opt_str()
    connected_at = _opt_at()
    requests_today = fields.Integer()
    daily_limit = fields.Integer()


class UserOut(Reply):
    id = _str()
    first_name = _str()
    last_name = _str()
    name = _str()
    email = _opt_str()
    role = _str()
    timezone = _opt_str()
    default_meeting_location = _opt_str()
    zoom = fields.Nested(ZoomConnectionInfoOut)
    created_at = _at()


class ZoomAuthorizationOut(Reply):
    authorize_url = _str()
    expires_at = _at()


class ZoomDisconnectOut(Reply):
    user_id = _str()
    status = _str()
    meetings_to_delete = fields.Integer()
    message = _str()


class DefaultMeetingLocationOut(Reply):
    user = fields.Nested(UserOut)
    calendars_updated = fields.Integer()


class ApiKeyOut(Reply):
    id = _str()
    name = _str()
    prefix = _opt_str(metadata={"description": "the key's first characters (null for keys made before this was kept)"})
    created_at = _at()
    last_used_at = _opt_at(metadata={"description": "updated at most once a minute"})
    revoked_at = _opt_at()


class ApiKeyIssuedOut(ApiKeyOut):
    key = _str(metadata={"description": "the key itself: shown this once, never again (only its hash is kept)"})


class AuditEventOut(Reply):
    id = _str()
    actor_kind = _str(metadata={"description": "api_key, user or cli"})
    actor_id = _opt_str()
    action = _str()
    entity_type = _str()
    entity_id = _opt_str()
    at = _at()
    summary = _str()


class InboundReplyOut(Reply):
    id = _str()
    channel = _str()
    from_address = _str()
    body = _str()
    intent = _str(metadata={"description": "reply, stop, start or help"})
    received_at = _at()


class ContactExportOut(Reply):
    """Everything Punctual holds about one contact."""

    contact = fields.Nested(ContactOut)
    appointments = fields.List(fields.Nested(AppointmentOut))
    enrollments = fields.List(fields.Nested(EnrollmentDetailOut))
    messages = fields.List(fields.Nested(MessageOut))
    replies = fields.List(fields.Nested(InboundReplyOut))
    exported_at = _at()


class ErrorBodyOut(Reply):
    code = _str(metadata={"description": "machine-readable, e.g. validation_error, not_found"})
    message = _str()
    # The JSON key must be "fields"; marshmallow takes declared fields off the class, so Schema.fields is intact.
    fields = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),  # type: ignore[assignment]
                         metadata={"description": "JSON path → reasons (validation errors only)"})


class ErrorOut(Reply):
    error = fields.Nested(ErrorBodyOut)


#: Fields a response may leave out (the rest are ``required`` in the document).
OPTIONAL: dict[type[Schema], set[str]] = {ErrorBodyOut: {"fields"}}


@functools.cache
def _instance(schema: type[Schema], many: bool) -> Schema:
    # Built once per class: constructing a schema (its fields, their nested schemas) cost more than dumping.
    return schema(many=many)


def dump(schema: type[Schema], obj: Any) -> dict:
    """One object through its response schema."""
    return _instance(schema, False).dump(obj)


def dump_many(schema: type[Schema], objs: Any) -> list[dict]:
    return _instance(schema, True).dump(objs)
