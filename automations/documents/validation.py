"""Everything wrong with a workflow document, all at once, each problem with its JSON path.

``validate_document`` is what publish enforces and what the builder and ``POST
/api/v1/workflows/validate`` show: schema errors (``steps[2].body``), merge-field problems (syntax,
unclosed ``{{``, ``{% tags %}``, unknown paths), conditions on unknown fields, ids that name nothing,
no trigger, and loops a run could go round without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from actions import STEP_TYPES
from automations.documents import graph
from automations.documents.workflow_schema import iter_templates, load_with_errors
from automations.errors import NotFound, ValidationError
from automations.rendering import merge_fields
from automations.runs import conditions
from automations.store.models import Calendar, Location, User
from triggers import TRIGGER_TYPES


@dataclass(frozen=True)
class Problem:
    """One thing wrong: ``path`` is a JSON path into the document (``triggers[0].filters.statuses``)."""

    path: str
    message: str

    def to_dict(self) -> dict:
        return {"path": self.path, "message": self.message}


def known_paths(location: Location) -> merge_fields.KnownPaths:
    return merge_fields.KnownPaths.for_location(location.custom_field_keys or [],
                                                list((location.custom_values or {}).keys()))


def validate_document(session: Session, location_id: str, raw: dict) -> list[Problem]:
    """Every problem that would stop ``raw`` from being published in this location; [] when none."""
    problems, _doc = _check(session, location_id, raw)
    return problems


def checked_document(session: Session, location_id: str, raw: dict) -> dict:
    """The loaded document, or a ValidationError carrying every problem (``fields``: path → reasons)."""
    problems, doc = _check(session, location_id, raw)
    if problems or doc is None:  # no document comes with problems
        raise to_error(problems)
    return doc


def to_error(problems: list[Problem], message: str = "workflow cannot be published") -> ValidationError:
    fields: dict[str, list[str]] = {}
    for p in problems:
        fields.setdefault(p.path, []).append(p.message)
    return ValidationError(f"{message}: {len(problems)} problem(s)", fields=fields)


def _check(session: Session, location_id: str, raw: dict) -> tuple[list[Problem], dict | None]:
    location = session.get(Location, location_id)
    if location is None:
        raise NotFound(f"no location {location_id!r}")
    doc, errors = load_with_errors(raw)
    problems = [Problem(path, msg) for path, msgs in errors.items() for msg in msgs]
    if doc is None:
        if isinstance(raw, dict) and not raw.get("triggers") and "triggers" not in errors:
            problems.append(_NO_TRIGGER)
        return problems, None
    calendar_ids = set(session.scalars(select(Calendar.id).where(Calendar.location_id == location_id)))
    user_ids = set(session.scalars(select(User.id).where(User.location_id == location_id)))
    problems += publish_problems(doc, known=known_paths(location), calendar_ids=calendar_ids, user_ids=user_ids)
    return problems, doc


_NO_TRIGGER = Problem("triggers", "a published workflow needs at least one trigger")


def publish_problems(doc: dict, *, known: merge_fields.KnownPaths, calendar_ids: set[str],
                     user_ids: set[str]) -> list[Problem]:
    """The checks on a structurally valid document that need the location, or only matter to publish."""
    problems: list[Problem] = []
    if not doc["triggers"]:
        problems.append(_NO_TRIGGER)
    if not doc["steps"]:
        problems.append(Problem("steps", "a published workflow needs at least one step"))
    for i, trig in enumerate(doc["triggers"]):
        refs = TRIGGER_TYPES.get(trig["type"]).references(trig["filters"])
        for kind, field_name, have in (("calendar", "calendars", calendar_ids), ("user", "assigned_users", user_ids)):
            for j, ref in enumerate(refs.get(f"{kind}s", [])):
                if ref not in have:
                    problems.append(Problem(f"triggers[{i}].filters.{field_name}[{j}]", f"no {kind} with id {ref!r}"))
    for i, _step, key, text in iter_templates(doc["steps"]):
        unknown = merge_fields.unknown_paths(merge_fields.paths(text), known)
        if unknown:
            problems.append(Problem(f"steps[{i}].{key}", f"unknown merge fields: {', '.join(unknown)}"
                                    + _hints(unknown, known)))
    for i, step in enumerate(doc["steps"]):
        for j, uid in enumerate(step.get("user_ids") or []):
            if uid not in user_ids:
                problems.append(Problem(f"steps[{i}].user_ids[{j}]", f"no user with id {uid!r}"))
        for where, condition in STEP_TYPES.get(step["type"]).conditions(step).items():
            for rule_path, name in conditions.rule_fields(condition):
                if name not in known and name not in conditions.CONDITION_ONLY_PATHS:
                    hint = merge_fields.suggestion(name, known)
                    problems.append(Problem(f"steps[{i}].{where}.{rule_path}", f"unknown field {name!r}"
                                            + (f" (did you mean {hint!r}?)" if hint else "")))
    positions = {s["id"]: i for i, s in enumerate(doc["steps"])}
    for loop in graph.loops_without_wait(doc["steps"]):
        names = " → ".join([*loop, loop[0]])
        problems.append(Problem(f"steps[{positions[loop[0]]}]",
                                f"steps {', '.join(loop)} form a loop that can run without waiting ({names}); "
                                "put a time delay in it"))
    return problems


def _hints(unknown: list[str], known: merge_fields.KnownPaths) -> str:
    hints = [f"{u} → {h}" for u in unknown if (h := merge_fields.suggestion(u, known))]
    return f" (did you mean: {'; '.join(hints)}?)" if hints else ""
