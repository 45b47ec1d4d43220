"""Recipes: workflow templates shipped as JSON files in ``recipes/`` that users import.

A recipe file is ``{"slug", "title", "description", "category", "placeholders": [...], "workflow":
{document}}``. A placeholder names what the importer maps to their location's own things::

    {"key": "calendars", "kind": "calendars", "label": "Calendars", "targets": ["triggers[0].filters.calendars"]}

Kinds: ``calendars`` (a list of calendar ids written at each target list; unmapped = every calendar),
``users`` (user ids: each target step notifies those users instead of its default recipients),
``sender`` (``{"from_name", "from_email", "from_number"}`` merged into ``settings``) and ``text`` (a
string replacing ``%%key%%`` in each target text; ``default`` when unmapped, unless ``required``).
``import_recipe`` checks the mapping against the location and refuses a bad one with the JSON path
of the problem (``mapping.calendars[1]``), saving nothing.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.documents import workflows
from automations.documents.workflow_schema import flatten
from automations.errors import NotFound, ValidationError
from automations.store.models import Calendar, Location, User, Workflow

MAX_RECIPE_BYTES = 512 * 1024
KINDS = ("calendars", "users", "sender", "text")
CATEGORIES = ("reminders", "follow-up", "rebooking", "internal", "reviews")
log = logging.getLogger(__name__)
_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def recipes_dir() -> Path:
    override = os.environ.get("PUNCTUAL_RECIPES_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "recipes"


class PlaceholderSchema(Schema):
    class Meta:
        unknown = RAISE

    key = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$"))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    label = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=1000))
    required = fields.Boolean(load_default=False)
    default = fields.String(load_default="", validate=validate.Length(max=2000))
    targets = fields.List(fields.String(), required=True, validate=validate.Length(min=1, max=50))


class RecipeSchema(Schema):
    class Meta:
        unknown = RAISE

    slug = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9-]{0,79}$"))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    category = fields.String(load_default="reminders", validate=validate.OneOf(CATEGORIES))
    placeholders = fields.List(fields.Nested(PlaceholderSchema), load_default=list)
    workflow = fields.Dict(required=True)


@dataclass(frozen=True)
class Recipe:
    slug: str
    title: str
    description: str
    workflow: dict
    category: str = "reminders"
    placeholders: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        return {"slug": self.slug, "title": self.title, "description": self.description,
                "steps": len(self.workflow.get("steps", []))}

    def detail(self) -> dict:
        """Everything a gallery shows: the summary, its category, what to map and the document."""
        return {**self.summary(), "category": self.category, "placeholders": copy.deepcopy(self.placeholders),
                "workflow": copy.deepcopy(self.workflow)}


def _read(path: Path) -> Recipe:
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise ValidationError.single("recipe", f"{path.name} is larger than {MAX_RECIPE_BYTES} bytes")
    try:
        data = RecipeSchema().load(json.loads(path.read_text(encoding="utf-8")))
    except ValueError as exc:  # JSON errors and marshmallow's (a ValueError too)
        detail = flatten(exc.messages) if isinstance(exc, MarshmallowError) else exc
        raise ValidationError.single("recipe", f"{path.name} is not a valid recipe: {detail}") from exc
    for i, ph in enumerate(data["placeholders"]):
        for j, target in enumerate(ph["targets"]):
            try:
                _resolve(data["workflow"], target)
            except KeyError as exc:
                raise ValidationError.single(f"placeholders[{i}].targets[{j}]",
                                             f"{path.name}: {target!r} names nothing in the workflow") from exc
    return Recipe(data["slug"], data["title"], data["description"], data["workflow"], data["category"],
                  data["placeholders"])


def all_recipes() -> list[Recipe]:
    """Every readable recipe; a broken file is logged and left out rather than hiding the rest."""
    folder = recipes_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append(_read(path))
        except ValidationError as exc:
            log.warning("skipping recipe: %s", exc.message)
    return sorted(found, key=lambda r: r.slug)


def find(slug: str) -> Recipe:
    for recipe in all_recipes():
        if recipe.slug == slug:
            return recipe
    raise NotFound(f"no recipe {slug!r}")


def _resolve(doc: Any, path: str) -> tuple[Any, str | int]:
    """(container, key) that a JSON path like ``triggers[0].filters.calendars`` names in ``doc``."""
    parts: list[str | int] = [int(i) if i else name for name, i in _PATH_PART.findall(path)]
    if not parts:
        raise KeyError(path)
    node = doc
    for part in parts[:-1]:
        node = node[part]
    last = parts[-1]
    if isinstance(node, dict) and isinstance(last, str):
        return node, last
    if isinstance(node, list) and isinstance(last, int) and last < len(node):
        return node, last
    raise KeyError(path)


class _Sender(Schema):
    class Meta:
        unknown = RAISE

    from_name = fields.String(validate=validate.Length(max=200))
    from_email = fields.Email()
    from_number = fields.String(validate=validate.Length(max=32))


def _check_mapping(session: Session, location_id: str, recipe: Recipe, mapping: Any) -> dict:
    """The mapping, checked against the recipe and the location; ValidationError with every bad path."""
    if mapping is None:
        mapping = {}
    if not isinstance(mapping, dict):
        raise ValidationError.single("mapping", "must be an object keyed by placeholder")
    errors: dict[str, list[str]] = {}
    by_key = {ph["key"]: ph for ph in recipe.placeholders}
    for key in mapping:
        if key not in by_key:
            errors.setdefault(f"mapping.{key}", []).append(
                f"not a placeholder of this recipe (known: {', '.join(by_key) or 'none'})")
    owned = {
        "calendars": set(session.scalars(select(Calendar.id).where(Calendar.location_id == location_id))),
        "users": set(session.scalars(select(User.id).where(User.location_id == location_id))),
    }
    for key, ph in by_key.items():
        path, value = f"mapping.{key}", mapping.get(key)
        if value is None:
            if ph["required"]:
                errors.setdefault(path, []).append(f"required: {ph['label']}")
            continue
        if ph["kind"] in owned:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                errors.setdefault(path, []).append(f"must be a list of {ph['kind'][:-1]} ids")
                continue
            for i, ref in enumerate(value):
                if ref not in owned[ph["kind"]]:
                    errors.setdefault(f"{path}[{i}]", []).append(f"no {ph['kind'][:-1]} with id {ref!r}")
        elif ph["kind"] == "sender":
            try:
                _Sender().load(value if isinstance(value, dict) else {"": value})
            except MarshmallowError as exc:
                for sub, reasons in flatten(exc.messages, path).items():
                    errors.setdefault(sub, []).extend(reasons)
        elif not isinstance(value, str) or not value.strip() or len(value) > 2000:
            errors.setdefault(path, []).append("must be non-empty text of at most 2000 characters")
    if errors:
        raise ValidationError("the recipe mapping is invalid", fields=errors)
    return mapping


def apply_mapping(recipe: Recipe, mapping: dict) -> dict:
    """The recipe's document with the (checked) mapping written in."""
    doc = copy.deepcopy(recipe.workflow)
    for ph in recipe.placeholders:
        value = mapping.get(ph["key"])
        for target in ph["targets"]:
            node, key = _resolve(doc, target)
            if ph["kind"] == "text":
                text = value if value is not None else ph["default"]
                node[key] = node[key].replace(f"%%{ph['key']}%%", text)
            elif value is None:
                continue
            elif ph["kind"] == "calendars":
                node[key] = list(value)
            elif ph["kind"] == "users":
                node[key] = {**node[key], "recipients": "users", "user_ids": list(value)}
            elif ph["kind"] == "sender":
                node[key] = {**node[key], **{k: v for k, v in value.items() if v}}
    return doc


def import_recipe(session: Session, location_id: str | Location, slug: str, mapping: dict | None = None,
                  now: datetime | None = None, *, publish: bool = False) -> Workflow:
    """Import recipe ``slug`` into the location as a new draft (published with ``publish``), with its
    placeholders mapped. A bad mapping is refused with its JSON path and nothing is saved."""
    if now is None:
        raise TypeError("import_recipe() needs now")
    location = location_id if isinstance(location_id, Location) else session.get(Location, location_id)
    if location is None:
        raise NotFound(f"no location {location_id!r}")
    recipe = find(slug)
    document = apply_mapping(recipe, _check_mapping(session, location.id, recipe, mapping))
    wf = workflows.create(session, location, document, now=now)
    if publish:
        workflows.publish(session, wf, now=now)
    return wf
