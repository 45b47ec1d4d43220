"""The recipes gallery: browse by category, preview a recipe's trigger and steps, and import it with a
mapping (workflow name, which calendars it listens to, the sender) — then edit it in the builder.

The mapping is applied to the recipe's document before ``workflows.create`` validates and saves it, so a
bad mapping saves nothing. (The documents package's ``import_recipe(..., mapping)`` replaces
:func:`apply_mapping` once it lands.)
"""

from __future__ import annotations

import copy

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from automations.documents import recipes, workflows
from automations.errors import PunctualError
from automations.store.models import Calendar
from web.api.common import location, now, tx
from web.pages import builder, problems
from web.pages.base import bp, login_required

DEFAULT_CATEGORY = "Appointments"


def category(recipe: recipes.Recipe) -> str:
    return getattr(recipe, "category", None) or recipe.workflow.get("category") or DEFAULT_CATEGORY


def apply_mapping(document: dict, *, name: str, calendar_ids: list[str], from_name: str, from_email: str) -> dict:
    doc = copy.deepcopy(document)
    if name.strip():
        doc["name"] = name.strip()
    for trig in doc.get("triggers", []):
        if trig.get("type") == "appointment_status" and calendar_ids:
            trig.setdefault("filters", {})["calendars"] = calendar_ids
    settings = doc.setdefault("settings", {})
    if from_name.strip():
        settings["from_name"] = from_name.strip()
    if from_email.strip():
        settings["from_email"] = from_email.strip()
    return doc


@bp.get("/recipes")
@login_required
def recipe_gallery():
    chosen = request.args.get("category", "")[:60]
    all_ = recipes.all_recipes()
    categories = sorted({category(r) for r in all_})
    shown = [r for r in all_ if not chosen or category(r) == chosen]
    return render_template("recipes.html", recipes=shown, categories=categories, chosen=chosen, category=category)


def _render(recipe, *, found=(), form=None, status=200):
    with tx() as s:
        calendars = list(s.scalars(select(Calendar).where(Calendar.location_id == g.location_id).order_by(Calendar.name)))
    steps = recipe.workflow.get("steps", [])
    summary, by_field = problems.for_form(list(found))
    return render_template("recipe.html", recipe=recipe, steps=steps, names=builder.step_names(steps),
                           summary=builder.summary, type_label=builder.type_label, calendars=calendars,
                           problems=summary, errors=by_field, form=form or {}, field_id=problems.field_id,
                           category=category(recipe)), status


@bp.get("/recipes/<slug>")
@login_required
def recipe_detail(slug: str):
    return _render(recipes.find(slug))


@bp.post("/recipes/<slug>/import")
@login_required
def recipe_import(slug: str):
    recipe = recipes.find(slug)
    with tx() as s:
        own = set(s.scalars(select(Calendar.id).where(Calendar.location_id == g.location_id)))
        chosen = [c for c in request.form.getlist("calendars") if c in own]
        doc = apply_mapping(recipe.workflow, name=request.form.get("name", ""), calendar_ids=chosen,
                            from_name=request.form.get("from_name", ""), from_email=request.form.get("from_email", ""))
        found, wid = [], None
        try:
            wid = workflows.create(s, location(s), doc, now=now()).id
        except PunctualError as exc:  # raised before anything was written
            found = [problems.Problem(p.path.replace("settings.", "", 1), p.message) for p in problems.from_error(exc)]
    if found:
        return _render(recipe, found=found, form=request.form, status=422)
    flash(f"Imported “{recipe.title}” as a draft. Review it, then publish.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=wid))
