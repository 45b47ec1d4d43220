"""Forms generated from marshmallow schemas: one generic form for every step type, trigger filters and
workflow settings, read from the type's own schema (the n8n pattern: a node's parameters describe its form).

:func:`describe` turns a schema into :class:`Field` s (text, textarea, number, select, checkbox, checkboxes,
lines, json, step target, group); :func:`parse` reads a posted form back into the dict the schema loads.
Parsing never raises for bad input: a number that is not one is passed on as text so the schema names the
field and the reason. Wording (labels, help, maxima) for fields the seeds describe lives in ``LABELS``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, fields, validate
from werkzeug.datastructures import MultiDict

#: Step fields that name another step: offered as a choice of the workflow's steps.
TARGET_FIELDS = {"target", "next", "otherwise", "on_true", "on_timeout", "on_reply", "if_past.target"}
#: Long text (with the merge-field picker and toolbar).
TEXTAREAS = {"body", "html", "text", "whisper", "human_message"}
#: Short text that also takes merge fields.
TEMPLATE_INPUTS = {"subject"}
#: Skipped: set by the builder itself.
HIDDEN = {"id", "type"}

LABELS: dict[str, tuple[str, str]] = {
    # name: (label, help)
    "name": ("Action name", "Shown in the builder and the enrollment log"),
    "next": ("Then go to", "Leave as 'the following step' to continue down the flow"),
    "amount": ("Wait", ""),
    "unit": ("Unit", ""),
    "window": ("Advance window", "Only continue on these days, between these times (leave empty for any time)"),
    "window.days": ("Days", "One per line: mon, tue, wed, thu, fri, sat, sun"),
    "window.start": ("From", "HH:MM, e.g. 09:00"),
    "window.end": ("Until", "HH:MM, e.g. 17:00"),
    "channel": ("Type of notification", ""),
    "recipients": ("Send to", "The appointment's assigned user, every user, chosen users, or custom addresses"),
    "user_ids": ("Users", "Used when 'Send to' is users"),
    "emails": ("Email addresses", "One per line; used when 'Send to' is custom"),
    "phones": ("Phone numbers", "One per line, with country code; used when 'Send to' is custom"),
    "subject": ("Subject", ""),
    "body": ("Message", "Merge fields such as {{ contact.first_name }} are filled in when the message is sent"),
    "html": ("Formatted body (HTML)", "Optional: the formatted version of the email; the message above is its plain-text part"),
    "from_name": ("From name", "Leave empty for the workflow's or location's sender"),
    "from_email": ("From email", "Leave empty for the workflow's or location's sender"),
    "from_number": ("From number", "Leave empty for the workflow's or location's number"),
    "reply_to": ("Reply-to", ""),
    "cc": ("Cc", "One address per line"),
    "bcc": ("Bcc", "One address per line"),
    "media_urls": ("Media URLs (MMS)", "One https:// link per line"),
    "target": ("Go to step", ""),
    "branches": ("Branches (JSON)", 'A list of {"name", "condition": {"match", "rules": [...]}, "target"}'),
    "otherwise": ("Otherwise go to", "Where contacts go when no branch matches"),
    "condition": ("Condition (JSON)", '{"match": "all", "rules": [{"field": "appointment.status", "op": "eq", "value": "confirmed"}]}'),
    "timeout": ("Time out after", ""),
    "timeout.amount": ("Amount", ""),
    "timeout.unit": ("Unit", ""),
    "on_true": ("When the condition is met, go to", ""),
    "on_timeout": ("When it times out, go to", ""),
    "on_reply": ("When they reply, go to", ""),
    "status": ("New appointment status", ""),
    "skip_if_after": ("Skip this step if its moment has passed",
                      "Skip this step if its moment has passed — N minutes (or hours, days) before/after the "
                      "appointment: a note meant for “1 hour before” never goes out late. Leave “When” empty for "
                      "no guard."),
    "skip_if_after.direction": ("When", "before or after the appointment's start time"),
    # workflow settings
    "timezone_mode": ("Time zone", "Send times and rendered times use the location's or the contact's time zone"),
    "reschedule": ("When an appointment is rescheduled", "restart: start the workflow again; recalculate: keep the place, recompute waits"),
    "allow_reentry": ("Allow a contact to enter again", ""),
    "stop_on_response": ("Stop on response", "A reply from the contact ends their run"),
    "meeting_link": ("Meeting link", "When a Zoom link is not ready in time"),
    "meeting_link.policy": ("If the link cannot be made", "fallback: send with the calendar's static location; hold_and_alert: hold the message and alert the host"),
    "meeting_link.wait_seconds": ("Wait for the link (seconds)", "0 to 86400"),
    "time_window": ("Allowed time window (quiet hours)", "Outbound messages wait for the window's next opening"),
    "time_window.days": ("Days", "One per line: mon … sun"),
    "time_window.start": ("From", "HH:MM"),
    "time_window.end": ("Until", "HH:MM"),
    # trigger filters
    "event_type": ("Event type", "A one-time appointment, a recurring one, or either"),
    "statuses": ("Appointment status is", "None ticked: any status"),
    "calendars": ("In calendar", "None ticked: any calendar"),
    "assigned_users": ("Assigned user", "None ticked: anyone"),
    "contact_tags": ("Contact has tag", "One per line"),
    "modified_by": ("Changed by", "None ticked: anyone"),
}

CHOICE_LABELS = {
    "any": "Either", "normal": "Normal (one-time)", "recurring": "Recurring", "email": "Email", "sms": "SMS",
    "in_app": "Notification (in-app)", "assigned_user": "Assigned user", "all_users": "All users",
    "users": "Chosen users", "custom": "Custom addresses", "location": "Location's time zone",
    "contact": "Contact's time zone", "restart": "Restart", "recalculate": "Recalculate",
    "fallback": "Send with the fallback location", "hold_and_alert": "Hold and alert the host",
}


@dataclass
class Field:
    name: str  # dotted form name, e.g. if_past.action
    kind: str  # text | template | textarea | number | select | checkbox | checkboxes | lines | json | target | group
    label: str
    help: str = ""
    required: bool = False
    nullable: bool = False
    choices: list[tuple[str, str]] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)
    maximum: int | None = None
    minimum: int | None = None
    max_length: int | None = None


def _label(name: str) -> tuple[str, str]:
    key = name.removeprefix("filters.").removeprefix("settings.")  # a form's own prefix, not nesting
    if key in LABELS:
        return LABELS[key]
    return key.rsplit(".", 1)[-1].replace("_", " ").capitalize(), ""


def _one_of(f: fields.Field) -> list[str] | None:
    for v in list(getattr(f, "validators", []) or []):
        if isinstance(v, validate.OneOf):
            return [str(c) for c in v.choices]
    return None


def _bounds(f: fields.Field) -> tuple[int | None, int | None, int | None]:
    lo = hi = length = None
    for v in list(getattr(f, "validators", []) or []):
        if isinstance(v, validate.Range):
            lo, hi = v.min, v.max
        if isinstance(v, validate.Length):
            length = v.max
    return lo, hi, length


def describe(schema: Schema, prefix: str = "", choices: dict[str, list[tuple[str, str]]] | None = None) -> list[Field]:
    """The form fields of a schema, in declaration order. ``choices`` supplies options from the database
    (``calendars``, ``assigned_users``, ``user_ids``, step targets)."""
    choices = choices or {}
    out: list[Field] = []
    for key, f in schema.fields.items():
        name = f"{prefix}{key}"
        if name in HIDDEN:
            continue
        label, help_text = _label(name)
        lo, hi, length = _bounds(f)
        common: dict[str, Any] = dict(name=name, label=label, help=help_text, required=f.required, nullable=f.allow_none,
                      maximum=hi, minimum=lo, max_length=length)
        if name in TARGET_FIELDS:
            out.append(Field(kind="target", choices=choices.get("steps", []), **common))
        elif isinstance(f, fields.Nested):
            nested = f.schema
            if f.many:
                out.append(Field(kind="json", **common))
            else:
                out.append(Field(kind="group", children=describe(nested, f"{name}.", choices), **common))
        elif isinstance(f, fields.List):
            inner = f.inner
            options = _one_of(inner)
            if options:
                out.append(Field(kind="checkboxes", choices=[(o, CHOICE_LABELS.get(o, o)) for o in options], **common))
            elif key in choices:
                out.append(Field(kind="checkboxes", choices=choices[key], **common))
            elif isinstance(inner, fields.String | fields.Email | fields.Url):
                out.append(Field(kind="lines", **common))
            else:
                out.append(Field(kind="json", **common))
        elif isinstance(f, fields.Dict):
            out.append(Field(kind="json", **common))
        elif isinstance(f, fields.Boolean):
            out.append(Field(kind="checkbox", **common))
        elif isinstance(f, fields.Integer):
            out.append(Field(kind="number", **common))
        else:
            options = _one_of(f)
            if options:
                out.append(Field(kind="select", choices=[(o, CHOICE_LABELS.get(o, o)) for o in options], **common))
            elif key in TEXTAREAS:
                out.append(Field(kind="textarea", **common))
            elif key in TEMPLATE_INPUTS:
                out.append(Field(kind="template", **common))
            else:
                out.append(Field(kind="text", **common))
    return out


def _set(out: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        out = out.setdefault(p, {})
    out[parts[-1]] = value


def parse(form_fields: list[Field], form: MultiDict) -> dict:
    """The posted form as the schema's input. Empty optional fields are left out (schema defaults apply)."""
    out: dict = {}
    for f in form_fields:
        value = _parse_one(f, form)
        if value is not _MISSING:
            _set(out, f.name, value)
    return out


_MISSING = object()


def _parse_one(f: Field, form: MultiDict) -> Any:
    raw = form.get(f.name)
    if f.kind == "group":
        child = {}
        for c in f.children:
            v = _parse_one(c, form)
            if v is not _MISSING:
                child[c.name.rsplit(".", 1)[-1]] = v
        numbers = [c.name.rsplit(".", 1)[-1] for c in f.children if c.kind == "number"]
        # A duration (skip_if_after, a timeout) with no amount filled in was not given: its select children
        # (before/after, a unit) always post a value, which alone must not turn the group on.
        unfilled = numbers and all(child.get(n) in (None, "") for n in numbers)
        if unfilled:
            return None if f.nullable else _MISSING
        if f.nullable and not any(v not in (None, "", []) for v in child.values()):
            return None
        return child if child else _MISSING
    if f.kind == "checkbox":
        return form.get(f.name) in ("on", "true", "1", "yes")
    if f.kind == "checkboxes":
        return [v for v in form.getlist(f.name) if v]
    if f.kind == "lines":
        return [line.strip() for line in (raw or "").splitlines() if line.strip()]
    if raw is None:
        return _MISSING
    if f.kind == "number":
        text = raw.strip()
        if not text:
            return _MISSING if not f.required else text
        try:
            return int(text)
        except ValueError:
            return text  # the schema answers "Not a valid integer." at this field
    if f.kind == "json":
        text = raw.strip()
        if not text:
            return None if f.nullable else _MISSING
        try:
            return json.loads(text)
        except ValueError:
            return text  # the schema says it is not a list/dict, at this field
    if f.kind in ("select", "target"):
        return raw or (None if f.nullable else _MISSING)
    if f.kind in ("text", "template") and not raw.strip() and f.nullable:
        return None
    return raw


def value_of(data: dict | None, dotted: str) -> Any:
    cur: Any = data or {}
    for p in dotted.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(p)
    return cur


def display(f: Field, data: dict | None) -> Any:
    """The current value of a field, as its widget shows it."""
    v = value_of(data, f.name)
    if f.kind == "lines":
        return "\n".join(str(x) for x in (v or []))
    if f.kind == "json":
        return "" if v in (None, "") else (v if isinstance(v, str) else json.dumps(v, indent=2))
    if f.kind == "checkboxes":
        return list(v or [])
    return "" if v is None else v
