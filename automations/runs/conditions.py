"""Conditions for if/else branches and wait-for-condition steps.

A condition is ``{"match": "all"|"any", "rules": [{"field": "contact.tags", "op": "contains",
"value": "vip"}]}`` evaluated against raw facts (``render_context.build_condition_facts``). Fields
are merge-field paths; an unknown field is simply missing (None).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowError

from automations.clock import ensure_utc


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip().lower()


def _as_time(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return ensure_utc(v)
    if isinstance(v, str) and v:
        try:
            return ensure_utc(datetime.fromisoformat(v))
        except ValueError:
            return None
    return None


def _number(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list | tuple | set):
        return _text(expected) in {_text(a) for a in actual}
    return _text(expected) in _text(actual)


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def check(actual: Any, expected: Any) -> bool:
        a_time, e_time = _as_time(actual), _as_time(expected)
        if a_time is not None and e_time is not None:
            return op(a_time, e_time)
        a_num, e_num = _number(actual), _number(expected)
        return a_num is not None and e_num is not None and op(a_num, e_num)

    return check


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equals": lambda a, e: _text(a) == _text(e),
    "not_equals": lambda a, e: _text(a) != _text(e),
    "contains": _contains,
    "not_contains": lambda a, e: not _contains(a, e),
    "starts_with": lambda a, e: _text(a).startswith(_text(e)),
    "is_empty": lambda a, _e: a in (None, "", [], {}),
    "is_not_empty": lambda a, _e: a not in (None, "", [], {}),
    "is_true": lambda a, _e: a is True or _text(a) in ("true", "1", "yes"),
    "is_false": lambda a, _e: not (a is True or _text(a) in ("true", "1", "yes")),
    "in": lambda a, e: _text(a) in {_text(x) for x in (e or [])},
    "greater_than": _compare(lambda a, e: a > e),
    "less_than": _compare(lambda a, e: a < e),
    "after": _compare(lambda a, e: a > e),
    "before": _compare(lambda a, e: a < e),
}


class RuleSchema(Schema):
    field = fields.String(required=True, validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$"))
    op = fields.String(required=True, validate=validate.OneOf(sorted(OPERATORS)))
    value = fields.Raw(load_default=None, allow_none=True)

    @validates_schema
    def _value_fits_the_operator(self, data: dict, **_kw) -> None:
        if data.get("op") == "in" and not isinstance(data.get("value"), list):
            raise MarshmallowError("must be a list of values for the operator 'in'", "value")


class ConditionSchema(Schema):
    match = fields.String(load_default="all", validate=validate.OneOf(["all", "any"]))
    rules = fields.List(fields.Nested(RuleSchema), required=True, validate=validate.Length(min=1, max=50))


#: Fields conditions may test beyond the merge fields (raw facts: lists, flags, an aware datetime).
CONDITION_ONLY_PATHS: frozenset[str] = frozenset({
    "contact.tags", "contact.sms_dnd", "contact.email_dnd", "appointment.is_recurring", "right_now.datetime",
})


def rule_fields(condition: dict) -> list[tuple[str, str]]:
    """(path inside the condition, field) for each rule: what publish checks against known paths."""
    return [(f"rules[{i}].field", rule["field"]) for i, rule in enumerate(condition["rules"])]


def lookup(facts: dict, path: str) -> Any:
    value: Any = facts
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def evaluate(condition: dict, facts: dict) -> bool:
    results = (OPERATORS[r["op"]](lookup(facts, r["field"]), r.get("value")) for r in condition["rules"])
    return all(results) if condition.get("match", "all") == "all" else any(results)
