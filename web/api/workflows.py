"""``/api/v1/workflows``: create and edit drafts, publish and unpublish, export and import documents,
and delete drafts that were never published.

The request body of create, replace and import *is* the workflow document; the engine validates it
(``automations.documents.workflow_schema``) and reports every problem by JSON path (``steps[0].subject``).
Nothing is saved when there is one.

The builder's tools: validate a document (every problem at once, as data), simulate a booking's
timeline (``automations.engine.simulate``), preview a message step for a real contact and appointment,
and send it as a test (``automations.engine.preview``).
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate
from werkzeug.utils import secure_filename

from automations.documents import workflows
from automations.documents.validation import validate_document
from automations.documents.workflow_schema import DocumentSchema
from automations.engine import preview as previews
from automations.engine.simulate import simulate as run_simulation
from automations.store.models import Workflow
from automations.store.states import WorkflowStatus
from web.api import responses as out
from web.api import serialize
from web.api.common import (
    BodySchema,
    Id,
    PageQuery,
    QuerySchema,
    Timestamp,
    TimeZone,
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
    wake_worker,
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
    args = query_args(WorkflowListQuery)
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
    json_body(BodySchema, optional=True)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        workflows.publish(s, wf, now=now())
        return serialize.workflow_detail(s, wf)


@bp.post("/workflows/<id:workflow_id>/unpublish")
@doc("Stop enrolling (running enrollments finish on their version)", response=out.WorkflowDetailOut, errors=(409,))
def unpublish(workflow_id: str) -> ResponseReturnValue:
    json_body(BodySchema, optional=True)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        workflows.unpublish(s, wf, now=now())
        return serialize.workflow_detail(s, wf)


@bp.get("/workflows/<id:workflow_id>/export")
@doc("Download the workflow document (the draft, or a published version)", query=ExportQuery, download=True)
def export(workflow_id: str) -> ResponseReturnValue:
    args = query_args(ExportQuery)
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


# -- the builder's tools -------------------------------------------------------------------------------


def _validation(s, document: dict) -> dict:
    problems = validate_document(s, location(s).id, document)
    return out.dump(out.ValidationResultOut, {"valid": not problems, "problems": [p.to_dict() for p in problems]})


@bp.post("/workflows/validate")
@doc("Validate a workflow document: every problem at once with its JSON path (200 either way: problems "
     "are data)", body=DocumentSchema, response=out.ValidationResultOut)
def validate_any() -> ResponseReturnValue:
    document = json_body()
    with tx() as s:
        return _validation(s, document)


@bp.post("/workflows/<id:workflow_id>/validate")
@doc("Validate the stored draft, or the document in the body when one is given (200 either way)",
     body=DocumentSchema, body_optional=True, response=out.ValidationResultOut)
def validate_draft(workflow_id: str) -> ResponseReturnValue:
    document = json_body(optional=True)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        return _validation(s, document or wf.draft)


class OptedOut(BodySchema):
    sms = fields.Boolean(load_default=False)
    email = fields.Boolean(load_default=False)


class SimulateBody(BodySchema):
    calendar_id = Id(required=True, metadata={"description": "a calendar of this location (else 422)"})
    start_time = Timestamp(required=True, metadata={"description": "the hypothetical appointment's start"})
    contact_timezone = TimeZone(required=True)
    booked_at = Timestamp(required=True, metadata={"description": "when the hypothetical booking is made"})
    contact_opted_out = fields.Nested(OptedOut, load_default=None, allow_none=True,
                                      metadata={"description": "channels the contact opted out of"})


@bp.post("/workflows/<id:workflow_id>/simulate")
@doc("Simulate a hypothetical booking: the timeline of every step (when it runs in the contact's zone and "
     "UTC, or why it is skipped), computed by the engine itself and rolled back (422 naming calendar_id "
     "when it is not a calendar of this location)", body=SimulateBody, response=out.TimelineOut)
def simulate(workflow_id: str) -> ResponseReturnValue:
    data = json_body(SimulateBody)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        timeline = run_simulation(s, location_id=wf.location_id, document_or_workflow=wf,
                                  calendar_id=data["calendar_id"], start_time=data["start_time"],
                                  contact_timezone=data["contact_timezone"], booked_at=data["booked_at"],
                                  contact_opted_out=data.get("contact_opted_out"))
        return out.dump(out.TimelineOut, timeline.to_dict())


class StepFor(BodySchema):
    step_id = fields.String(required=True, validate=validate.Length(min=1, max=64),
                            metadata={"description": "a message step of the draft (else 422)"})
    contact_id = Id(required=True, metadata={"description": "a contact of this location (else 422)"})
    appointment_id = Id(load_default=None, allow_none=True,
                        metadata={"description": "an appointment of this location (else 422)"})


@bp.post("/workflows/<id:workflow_id>/preview")
@doc("Render a message step of the draft for a contact and appointment, as delivery would (recipient's time "
     "zone, meeting link), without sending or writing anything (422 naming the field that names nothing, or "
     "step_id when the step sends nothing to this contact)", body=StepFor, response=out.PreviewOut)
def preview(workflow_id: str) -> ResponseReturnValue:
    data = json_body(StepFor)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        result = previews.preview(s, wf, step_id=data["step_id"], contact_id=data["contact_id"],
                                  appointment_id=data["appointment_id"], now=now(),
                                  providers=current_app.extensions["punctual"].providers)
        return out.dump(out.PreviewOut, result.to_dict())


@bp.post("/workflows/<id:workflow_id>/test-send")
@doc("Send a message step of the draft to a contact now as a test: written to the outbox marked test and "
     "sent by the worker through the real channel (captured in demo mode)", body=StepFor,
     response=out.TestSendOut, status=201)
def test_send(workflow_id: str) -> ResponseReturnValue:
    data = json_body(StepFor)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        rows = previews.send_test(s, wf, step_id=data["step_id"], contact_id=data["contact_id"],
                                  appointment_id=data["appointment_id"], now=now())
        result = {"messages": [serialize.message(m) for m in rows]}  # each already dumped by MessageOut
    wake_worker()
    return result, 201
