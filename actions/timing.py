"""Time in step and workflow documents, shared by the steps and the workflow schema: advance windows
(``wait_time_delay.window``, ``settings.time_window``) and moments relative to the appointment's
start (``wait_appointment_time`` and every step's ``skip_if_after`` guard)."""

from __future__ import annotations

from datetime import datetime

from marshmallow import RAISE, Schema, fields, post_load, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from automations.errors import ValidationError
from automations.rendering import timecalc


class WindowSchema(Schema):
    class Meta:
        unknown = RAISE

    days = fields.List(fields.String(), load_default=list)
    start = fields.String(load_default=None, allow_none=True)
    end = fields.String(load_default=None, allow_none=True)


def parse_window(window: dict | None, prefix: str = "window") -> timecalc.AdvanceWindow | None:
    if not window:
        return None
    return timecalc.AdvanceWindow.parse(window.get("days") or [], window.get("start"), window.get("end"),
                                        path_prefix=prefix)


def reraise_for_marshmallow(exc: ValidationError) -> MarshmallowError:
    """Our ValidationError (path → reasons) as marshmallow's, so paths nest under the step."""
    nested: dict = {}
    for path, reasons in exc.fields.items():
        node = nested
        parts = path.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = reasons
    return MarshmallowError(nested)


SECONDS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


class TimeoutSchema(Schema):
    class Meta:
        unknown = RAISE

    amount = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=10_000_000))
    unit = fields.String(required=True, validate=validate.OneOf(list(SECONDS)))


class AppointmentOffsetFields(Schema):
    """``direction`` (before | after | exact) and months/days/hours/minutes, rolled over on load
    (``timecalc.AppointmentOffset.normalize``) so the stored document says what will happen."""

    direction = fields.String(required=True, validate=validate.OneOf(list(timecalc.DIRECTIONS)))
    months = fields.Integer(load_default=0, strict=True)
    days = fields.Integer(load_default=0, strict=True)
    hours = fields.Integer(load_default=0, strict=True)
    minutes = fields.Integer(load_default=0, strict=True)

    @validates_schema
    def _offset_valid(self, data: dict, **_kw) -> None:
        try:
            offset_of(data, normalize=True)
        except ValidationError as exc:
            raise reraise_for_marshmallow(exc) from exc

    @post_load
    def _roll_over(self, data: dict, **_kw) -> dict:
        off = offset_of(data, normalize=True)
        data.update(months=off.months, days=off.days, hours=off.hours, minutes=off.minutes)
        return data


def offset_of(data: dict, *, normalize: bool = False) -> timecalc.AppointmentOffset:
    values = [data.get(k, 0) for k in ("months", "days", "hours", "minutes")]
    return timecalc.AppointmentOffset.normalize(*values) if normalize else timecalc.AppointmentOffset(*values)


class SkipIfAfterSchema(AppointmentOffsetFields):
    """A step's guard: skip the step when it is reached after this moment (``direction`` and offset
    from the appointment's start, like ``wait_appointment_time``)."""

    class Meta:
        unknown = RAISE


def appointment_moment(start: datetime, tz: str, spec: dict) -> datetime:
    """The instant ``spec`` (direction + offset, as loaded) names for an appointment starting at ``start``."""
    return timecalc.appointment_wait_target(start, tz, spec["direction"], offset_of(spec))
