"""``/api/v1/workflows``: create and edit drafts, publish and unpublish, export and import documents,
and delete drafts that were never published.

The request body of create, replace and import *is* the workflow document; the engine validates it
(``automations.documents.workflow_schema``) and reports every problem by JSON path (``steps[0].subject``).
Nothing is saved when there is one.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate
from werkzeug.utils import secure_filename

from automations.documents import workflows
from automations.documents.workflow_schema import DocumentSchema
from automations.store.models import Workflow
from automations.store.states import WorkflowStatus
from web.api import responses as out
from web.api import serialize
from web.api.common import (
    BodySchema,
    PageQuery,
    QuerySchema,
    doc,
    json_body,
    load,
    location,
    now,
    owned,
    page,
    paginate,
    query_args,
    scoped,
    tx,
)

bp = Blueprint("workflows", __name__)
MAX_VERSION = 2**31 - 1  # the column is a 32-bit integer


class WorkflowListQuery(PageQuery):
    status = fields.String(validate=validate.OneOf([s.value for s in WorkflowStatus]))


class ExportQuery(QuerySchema):
    version = fields.Integer(load_default=None, validate=validate.Range(min=1, max=MAX_VERSION),
                             metadata={"description": "a published version number; default: the draft"})


class RecipeFile(BodySchema):
    """A recipe file (``recipes/*.json``): import accepts it as well as a bare document."""

    slug = fields.String(validate=validate.Length(max=100))
    title = fields.String(validate=validate.Length(max=200))
    description = fields.String(validate=validate.Length(max=2000))
    workflow = fields.Dict(required=True)


@bp.get("/workflows")
@doc("List workflows, oldest first", query=WorkflowListQuery, response=out.WorkflowOut, many=True)
def list_workflows() -> ResponseReturnValue:
    args = query_args(WorkflowListQuery())
    with tx() as s:
        query = scoped(Workflow)
        if args.get("status"):
            query = query.where(Workflow.status == args["status"])
        rows, cursor = paginate(s, query, Workflow, args)
        return page(serialize.workflows(s, rows), cursor)


@bp.post("/workflows")
@doc("Create a draft from a workflow document", body=DocumentSchema, response=out.WorkflowDetailOut, status=201)
def create() -> ResponseReturnValue:
    document = json_body()
    with tx() as s:
        result = serialize.workflow_detail(s, workflows.create(s, location(s), document, now=now()))
    return result, 201


@bp.post("/workflows/import")
@doc("Import a workflow document (or a recipe file) as a new draft", body=DocumentSchema,
     response=out.WorkflowDetailOut, status=201)
def import_document() -> ResponseReturnValue:
    document = json_body()
    if "workflow" in document and "steps" not in document:
        document = load(RecipeFile(), document)["workflow"]
    with tx() as s:
        result = serialize.workflow_detail(s, workflows.create(s, location(s), document, now=now()))
    return result, 201


@bp.get("/workflows/<id:workflow_id>")
@doc("Get a workflow: its draft, status and current version", response=out.WorkflowDetailOut)
def get(workflow_id: str) -> ResponseReturnValue:
    with tx() as s:
        return serialize.workflow_detail(s, owned(s, Workflow, workflow_id))


@bp.put("/workflows/<id:workflow_id>")
@doc("Replace the draft (published versions are unchanged until the next publish)", body=DocumentSchema,
     response=out.WorkflowDetailOut)
def replace(workflow_id: str) -> ResponseReturnValue:
    document = json_body()
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        workflows.update_draft(s, wf, document, now=now())
        return serialize.workflow_detail(s, wf)


@bp.post("/workflows/<id:workflow_id>/publish")
@doc("Publish the draft as the next version (422 naming every problem when it cannot be)",
     response=out.WorkflowDetailOut)
def publish(workflow_id: str) -> ResponseReturnValue:
    json_body(BodySchema(), optional=True)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        workflows.publish(s, wf, now=now())
        return serialize.workflow_detail(s, wf)


@bp.post("/workflows/<id:workflow_id>/unpublish")
@doc("Stop enrolling (running enrollments finish on their version)", response=out.WorkflowDetailOut, errors=(409,))
def unpublish(workflow_id: str) -> ResponseReturnValue:
    json_body(BodySchema(), optional=True)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        workflows.unpublish(s, wf, now=now())
        return serialize.workflow_detail(s, wf)


@bp.get("/workflows/<id:workflow_id>/export")
@doc("Download the workflow document (the draft, or a published version)", query=ExportQuery, download=True)
def export(workflow_id: str) -> ResponseReturnValue:
    args = query_args(ExportQuery())
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        document = workflows.export(s, wf, args["version"])
        name = wf.name
    suffix = f"-v{args['version']}" if args["version"] else ""
    filename = f"{secure_filename(name) or 'workflow'}{suffix}.json"
    return Response(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n",
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.delete("/workflows/<id:workflow_id>")
@doc("Delete a draft that was never published (409 otherwise: its history is kept)", status=204,
     errors=(409,))
def delete(workflow_id: str) -> ResponseReturnValue:
    with tx() as s:
        workflows.delete_draft(s, owned(s, Workflow, workflow_id))
    return "", 204
