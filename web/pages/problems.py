"""Validation problems as the pages show them: every ``(path, message)`` once in the summary at the top
(linking to its field) and again beside the field.

The one place a document path (``steps[2].if_past.target``) becomes a form field. Problems come from
``automations.documents.validation.validate_document`` (:func:`from_validation`: every problem at once)
or from an error a save raised (:func:`from_error`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from automations.documents import validation
from automations.errors import PunctualError

_STEP = re.compile(r"^steps\[(\d+)\]\.?(.*)$")
_TRIGGER = re.compile(r"^triggers\[(\d+)\]\.?(.*)$")


@dataclass(frozen=True)
class Problem:
    path: str  # the document's JSON path, e.g. steps[2].body
    message: str
    href: str = ""  # where the field is: "#field-body" on the same page, or another page's URL + anchor


def field_id(name: str) -> str:
    """The HTML id of the input for a form field name (``if_past.action`` → ``field-if_past-action``)."""
    return "field-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def from_error(exc: PunctualError) -> list[Problem]:
    """Every field problem in an error; a message without fields becomes one problem at ``$``."""
    out = [Problem(path, message) for path, messages in (exc.fields or {}).items() for message in messages]
    return out or [Problem("$", exc.message or "invalid")]


def from_validation(found: list[validation.Problem]) -> list[Problem]:
    """``validate_document``'s problems as the pages show them."""
    return [Problem(p.path, p.message) for p in found]


def check(session, location_id: str, document: dict) -> list[Problem]:
    """Every problem of ``document`` in this location (``validate_document``), nothing saved."""
    return from_validation(validation.validate_document(session, location_id, document))


def split(path: str) -> tuple[str, int | None, str]:
    """(``step`` | ``trigger`` | ``document``, index, the rest of the path)."""
    for kind, pattern in (("step", _STEP), ("trigger", _TRIGGER)):
        m = pattern.match(path)
        if m:
            return kind, int(m.group(1)), m.group(2)
    return "document", None, path


def for_form(problems: list[Problem], *, kind: str | None = None, index: int | None = None) -> tuple[list[Problem], dict[str, list[str]]]:
    """The summary (with same-page links) and the per-field messages for one form: a step's or trigger's
    (``kind`` + ``index``: paths are made relative to it) or the whole document's."""
    summary: list[Problem] = []
    by_field: dict[str, list[str]] = {}
    for p in problems:
        name = p.path
        if kind is not None:
            k, i, rest = split(p.path)
            if k == kind and i == index or k == kind and index is None:
                name = rest or "$"
        # A list item's problem belongs to the list's field: emails[1] → emails, branches[0].target → branches.
        base = name.split("[", 1)[0] or "$"
        by_field.setdefault(base, []).append(p.message)
        summary.append(Problem(p.path, p.message, "#" + field_id(base)))
    return summary, by_field
