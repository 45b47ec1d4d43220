"""``/api/v1/recipes``: the workflow templates shipped in ``recipes/``, and importing one into the
caller's location as a draft (or published right away)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from automations.documents import recipes
from web.api import responses as out
from web.api import serialize
from web.api.common import BodySchema, StrictBoolean, doc, json_body, location, now, tx

bp = Blueprint("recipes", __name__)


class RecipeImport(BodySchema):
    publish = StrictBoolean(load_default=False, metadata={"description": "publish the imported workflow at once"})


@bp.get("/recipes")
@doc("List the recipes available to import", response=out.RecipeOut, many=True)
def list_recipes() -> ResponseReturnValue:
    # A handful of files shipped with the app: one page, no cursor.
    return {"items": [serialize.recipe(r) for r in recipes.all_recipes()], "next_cursor": None}


@bp.post("/recipes/<slug>/import")
@doc("Import a recipe as a new workflow (optionally published)", body=RecipeImport, response=out.WorkflowDetailOut,
     status=201, body_optional=True)
def import_recipe(slug: str) -> ResponseReturnValue:
    data = json_body(RecipeImport, optional=True)
    with tx() as s:
        wf = recipes.import_recipe(s, location(s), slug, now=now(), publish=data["publish"])
        result = serialize.workflow_detail(s, wf)
    return result, 201
