"""Recipes: workflow templates shipped as JSON files in ``recipes/`` that users import."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from automations.documents import workflows
from automations.errors import NotFound, ValidationError
from automations.store.models import Location, Workflow

MAX_RECIPE_BYTES = 512 * 1024
log = logging.getLogger(__name__)


def recipes_dir() -> Path:
    override = os.environ.get("PUNCTUAL_RECIPES_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "recipes"


@dataclass(frozen=True)
class Recipe:
    slug: str
    title: str
    description: str
    workflow: dict

    def summary(self) -> dict:
        return {"slug": self.slug, "title": self.title, "description": self.description,
                "steps": len(self.workflow.get("steps", []))}


def _read(path: Path) -> Recipe:
    if path.stat().st_size > MAX_RECIPE_BYTES:
        raise ValidationError.single("recipe", f"{path.name} is larger than {MAX_RECIPE_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Recipe(data["slug"], data["title"], data.get("description", ""), data["workflow"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError.single("recipe", f"{path.name} is not a valid recipe: {exc}") from exc


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


def import_recipe(session: Session, location: Location, slug: str, *, now: datetime, publish: bool = False) -> Workflow:
    wf = workflows.create(session, location, find(slug).workflow, now=now)
    if publish:
        workflows.publish(session, wf, now=now)
    return wf
