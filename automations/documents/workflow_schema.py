"""Workflow documents: the JSON a user writes, imports and exports, and its validation.

A document is ``{"version": 1, "name", "settings", "triggers": [...], "steps": [...]}``. Each step is
validated by its own type's schema (``actions``), each trigger's filters by its type's schema
(``triggers``). Errors are reported as ``{json.path: [reasons]}`` — ``steps[2].delay.amount`` — and
nothing is saved when there is one.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from actions import STEP_TYPES
from actions.base import END
from actions.timing import WindowSchema, parse_window, reraise_for_marshmallow
from automations.errors import ValidationError
from automations.json_fields import StrictBoolean
from automations.rendering import merge_fields
from triggers import TRIGGER_TYPES

DOCUMENT_VERSION = 1
MAX_STEPS = 200


class MeetingLinkSettings(Schema):
    class Meta:
        unknown = RAISE

    #: fallback: after the wait, send with the calendar's static location; hold: keep holding, alert the host.
    policy = fields.String(load_default="fallback", validate=validate.OneOf(["fallback", "hold_and_alert"]))
    wait_seconds = fields.Integer(load_default=900, strict=True, validate=validate.Range(min=0, max=86400))


class SettingsSchema(Schema):
    class Meta:
        unknown = RAISE

    timezone_mode = fields.String(load_default="location", validate=validate.OneOf(["location", "contact"]))
    from_name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    from_email = fields.Email(load_default=None, allow_none=True)
    from_number = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=32))
    reschedule = fields.String(load_default="restart", validate=validate.OneOf(["restart", "recalculate"]))
    allow_reentry = StrictBoolean(load_default=False)
    stop_on_response = StrictBoolean(load_default=False)
    meeting_link = fields.Nested(MeetingLinkSettings, load_default=lambda: MeetingLinkSettings().load({}))
    #: Quiet hours: outbound sends (email, SMS, call, voicemail) wait for the window's next opening.
    time_window = fields.Nested(WindowSchema, allow_none=True)

    @validates_schema
    def _time_window_valid(self, data: dict, **_kw) -> None:
        try:
            parse_window(data.get("time_window"), prefix="time_window")
        except ValidationError as exc:
            raise reraise_for_marshmallow(exc) from exc


class TriggerSchema(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(required=True)
    name = fields.String(load_default="", validate=validate.Length(max=200))
    filters = fields.Dict(load_default=dict)


class DocumentSchema(Schema):
    class Meta:
        unknown = RAISE

    version = fields.Integer(required=True, strict=True, validate=validate.Equal(DOCUMENT_VERSION, error="must be 1"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    settings = fields.Nested(SettingsSchema, load_default=lambda: SettingsSchema().load({}))
    triggers = fields.List(fields.Dict(), load_default=list, validate=validate.Length(max=20))
    steps = fields.List(fields.Dict(), required=True, validate=validate.Length(max=MAX_STEPS))


def flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict as ``{"steps[2].delay.amount": [...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix or "$"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for p, reasons in flatten(value, path).items():
                out.setdefault(p, []).extend(reasons)
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "$"] = list(messages)
    elif isinstance(messages, list):
        for i, value in enumerate(messages):
            out.update(flatten(value, f"{prefix}[{i}]"))
    else:
        out[prefix or "$"] = [str(messages)]
    return out


def _load(schema: Schema, data: Any, prefix: str, errors: dict[str, list[str]]) -> dict | None:
    try:
        return schema.load(data)
    except MarshmallowError as exc:
        for path, reasons in flatten(exc.messages, prefix).items():
            errors.setdefault(path, []).extend(reasons)
        return None


def load_document(data: Any) -> dict:
    """Validate a document's structure and templates; return it normalized with defaults filled in.

    Raises ValidationError naming every bad field. Checks that need the location's data (unknown
    merge paths, calendar and user ids) and the publish-only rules (a trigger, no loop without a
    wait) are in :mod:`automations.documents.validation`.
    """
    doc, errors = load_with_errors(data)
    if errors or doc is None:  # no document comes with errors
        raise ValidationError("invalid workflow document", fields=errors)
    return doc


def load_with_errors(data: Any) -> tuple[dict | None, dict[str, list[str]]]:
    """(normalized document, errors). The document is None when its structure is broken; it is
    there when only its texts are (so the location checks can still run and report everything)."""
    if not isinstance(data, dict):
        return None, {"$": ["a workflow document must be a JSON object"]}
    errors: dict[str, list[str]] = {}
    doc = _load(DocumentSchema(), data, "", errors)
    if doc is None:
        return None, errors
    doc["triggers"] = [t for t in (_load_trigger(t, i, errors) for i, t in enumerate(doc["triggers"])) if t]
    steps = [_load_step(s, i, errors) for i, s in enumerate(doc["steps"])]
    doc["steps"] = [s for s in steps if s]
    if errors:
        return None, errors
    _check_graph(doc["steps"], errors)
    if errors:
        return None, errors
    _check_templates(doc["steps"], errors)
    return doc, errors


def _load_trigger(raw: dict, i: int, errors: dict[str, list[str]]) -> dict | None:
    base = _load(TriggerSchema(), raw, f"triggers[{i}]", errors)
    if base is None:
        return None
    if base["type"] not in TRIGGER_TYPES:
        errors.setdefault(f"triggers[{i}].type", []).append(
            f"unknown trigger type {base['type']!r}; known: {', '.join(TRIGGER_TYPES.names())}"
        )
        return None
    ttype = TRIGGER_TYPES.get(base["type"])
    filters = _load(ttype.filters_schema(), base["filters"], f"triggers[{i}].filters", errors)
    return None if filters is None else {**base, "filters": filters}


def _load_step(raw: dict, i: int, errors: dict[str, list[str]]) -> dict | None:
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in STEP_TYPES:
        reason = "required" if kind is None else f"unknown step type {kind!r}; known: {', '.join(STEP_TYPES.names())}"
        errors.setdefault(f"steps[{i}].type", []).append(reason)
        return None
    step = _load(STEP_TYPES.get(kind).schema(), raw, f"steps[{i}]", errors)
    if step and step.get("skip_if_after") and STEP_TYPES.get(kind).is_wait:
        errors.setdefault(f"steps[{i}].skip_if_after", []).append(
            "a wait step says what happens when its time has passed with if_past, not skip_if_after")
        return None
    return step


def _check_graph(steps: list[dict], errors: dict[str, list[str]]) -> None:
    positions: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step["id"] in positions:
            errors.setdefault(f"steps[{i}].id", []).append(f"duplicate step id {step['id']!r}")
        positions.setdefault(step["id"], i)
    for i, step in enumerate(steps):
        refs = dict(STEP_TYPES.get(step["type"]).targets(step))
        if step.get("next") not in (None, END):
            refs["next"] = step["next"]
        for field_path, target in refs.items():
            if target not in positions:
                errors.setdefault(f"steps[{i}].{field_path}", []).append(f"no step with id {target!r}")


def _check_templates(steps: list[dict], errors: dict[str, list[str]]) -> None:
    for i, _step, key, text in iter_templates(steps):
        problems = merge_fields.validate(text)
        if problems:
            errors.setdefault(f"steps[{i}].{key}", []).extend(problems)


def iter_templates(steps: list[dict]):
    """(index, step, key, template text) for every merge-field template in the steps; ``key`` is a
    path inside the step, reaching into JSON bodies and Slack blocks (``body.customer.name``)."""
    for i, step in enumerate(steps):
        for key in STEP_TYPES.get(step["type"]).template_fields:
            for path, text in _strings(step.get(key), key):
                yield i, step, path, text


def _strings(value: Any, path: str):
    # Iterative: a hostile body nested thousands deep must not hit the recursion limit.
    stack = [(path, value)]
    while stack:
        here, node = stack.pop()
        if isinstance(node, str):
            if node:
                yield here, node
        elif isinstance(node, dict):
            stack.extend((f"{here}.{k}", v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend((f"{here}[{j}]", v) for j, v in reversed(list(enumerate(node))))
