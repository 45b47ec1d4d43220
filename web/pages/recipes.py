"""The recipes gallery: browse by category, preview a recipe's trigger and steps, and import it with a
mapping of its placeholders (calendars, staff, sender, links) — then edit it in the builder.

Import is ``automations.documents.recipes.import_recipe`` (the API's path): it checks the mapping and
refuses a bad one with its JSON path (``mapping.sender.from_email``); nothing is saved then.
"""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from automations.documents import recipes, workflows
from automations.errors import PunctualError
from automations.store.models import Calendar, User
from web.api.common import now, tx
from web.pages import builder, problems
from web.pages.base import bp, login_required

SENDER_FIELDS = (("from_name", "Sender name"), ("from_email", "Sender email"), ("from_number", "Sender number"))
MAX_TEXT = 2000


def category(recipe: recipes.Recipe) -> str:
    return recipe.detail()["category"]


@bp.get("/recipes")
@login_required
def recipe_gallery():
    chosen = request.args.get("category", "")[:60]
    all_ = [(r, category(r)) for r in recipes.all_recipes()]
    categories = sorted({c for _, c in all_})
    shown = [r for r, c in all_ if not chosen or c == chosen]
    return render_template("recipes.html", recipes=shown, categories=categories, chosen=chosen, category=category)


def _render(recipe, *, found=(), form=None, status=200):
    with tx() as s:
        calendars = list(s.scalars(select(Calendar).where(Calendar.location_id == g.location_id).order_by(Calendar.name)))
        users = list(s.scalars(select(User).where(User.location_id == g.location_id).order_by(User.created_at)))
    steps = recipe.workflow.get("steps", [])
    summary, by_field = problems.for_form(list(found))
    return render_template("recipe.html", recipe=recipe, steps=steps, names=builder.step_names(steps),
                           summary=builder.summary, type_label=builder.type_label, calendars=calendars, users=users,
                           placeholders=recipe.placeholders, sender_fields=SENDER_FIELDS,
                           problems=summary, errors=by_field, form=form or MultiDict(), field_id=problems.field_id,
                           category=category(recipe)), status


def mapping_from_form(recipe: recipes.Recipe, form) -> dict:
    """The posted placeholder fields (``mapping.<key>``) as ``import_recipe``'s mapping; empty ones left out."""
    mapping: dict = {}
    for ph in recipe.placeholders:
        name = f"mapping.{ph['key']}"
        value: Any
        if ph["kind"] in ("calendars", "users"):
            value = [v[:64] for v in form.getlist(name)]
        elif ph["kind"] == "sender":
            value = {f: form.get(f"{name}.{f}", "").strip() for f, _ in SENDER_FIELDS}
            value = {k: v for k, v in value.items() if v}
        else:
            value = form.get(name, "").strip()[:MAX_TEXT + 1]
        if value:
            mapping[ph["key"]] = value
    return mapping


@bp.get("/recipes/<slug>")
@login_required
def recipe_detail(slug: str):
    return _render(recipes.find(slug))


@bp.post("/recipes/<slug>/import")
@login_required
def recipe_import(slug: str):
    recipe = recipes.find(slug)
    name = request.form.get("name", "").strip()
    found, wid = [], None
    with tx() as s:
        try:
            with s.begin_nested():  # a refused mapping or name leaves nothing behind
                wf = recipes.import_recipe(s, g.location_id, slug, mapping_from_form(recipe, request.form), now())
                if name:
                    workflows.update_draft(s, wf, {**wf.draft, "name": name}, now=now())
                wid = wf.id
        except PunctualError as exc:
            found = problems.from_error(exc)
    if found:
        return _render(recipe, found=found, form=request.form, status=422)
    flash(f"Imported “{recipe.title}” as a draft. Review it, then publish.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=wid))
