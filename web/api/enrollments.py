"""``/api/v1/enrollments``: who is in which workflow for which appointment, and, for one enrollment,
its log — every step's outcome with its reason, in order; removing a run from its workflow or moving
it to a step (``automations.engine.enrollment_admin``)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate

from automations.engine import enrollment_admin
from automations.store.models import Enrollment
from automations.store.states import EnrollmentState
from web.api import responses as out
from web.api import serialize
from web.api.common import (
    BodySchema,
    Id,
    PageQuery,
    doc,
    json_body,
    now,
    owned,
    page,
    paginate,
    query_args,
    scoped,
    tx,
    wake_worker,
)
from web.auth import current_actor

bp = Blueprint("enrollments", __name__)


class EnrollmentListQuery(PageQuery):
    workflow_id = Id()
    appointment_id = Id()
    contact_id = Id()
    state = fields.String(validate=validate.OneOf([s.value for s in EnrollmentState]))


@bp.get("/enrollments")
@doc("List enrollments, oldest first", query=EnrollmentListQuery, response=out.EnrollmentOut, many=True)
def list_enrollments() -> ResponseReturnValue:
    args = query_args(EnrollmentListQuery)
    with tx() as s:
        query = scoped(Enrollment)
        for key in ("workflow_id", "appointment_id", "contact_id", "state"):
            if args.get(key):
                query = query.where(getattr(Enrollment, key) == args[key])
        rows, cursor = paginate(s, query, Enrollment, args)
        return page(serialize.enrollments(s, rows), cursor)


@bp.get("/enrollments/<enrollment_id>")
@doc("Get an enrollment with its log lines in order", response=out.EnrollmentDetailOut)
def get(enrollment_id: str) -> ResponseReturnValue:
    with tx() as s:
        return serialize.enrollment_detail(s, owned(s, Enrollment, enrollment_id))


class MoveBody(BodySchema):
    step_id = fields.String(required=True, validate=validate.Length(min=1, max=64),
                            metadata={"description": "a step id of the enrollment's own workflow version"})


def _by() -> str:
    actor = current_actor()
    return f"{actor.kind} {actor.id}" if actor.id else actor.kind


@bp.post("/enrollments/<enrollment_id>/remove")
@doc("Remove the contact from the workflow: the run exits now and its unsent messages are withdrawn "
     "(409 when it is already over)", response=out.EnrollmentDetailOut, errors=(409,))
def remove(enrollment_id: str) -> ResponseReturnValue:
    json_body(BodySchema, optional=True)
    with tx() as s:
        owned(s, Enrollment, enrollment_id)
        enrollment = enrollment_admin.remove(s, enrollment_id, by=_by(), now=now())
        return serialize.enrollment_detail(s, enrollment)


@bp.post("/enrollments/<enrollment_id>/move")
@doc("Move the run to a step of its workflow version: due now, it arrives there as if it had just got "
     "there (422 naming step_id when there is no such step; 409 when the run is over)", body=MoveBody,
     response=out.EnrollmentDetailOut, errors=(409,))
def move(enrollment_id: str) -> ResponseReturnValue:
    data = json_body(MoveBody)
    with tx() as s:
        owned(s, Enrollment, enrollment_id)
        enrollment = enrollment_admin.move(s, enrollment_id, data["step_id"], by=_by(), now=now())
        result = serialize.enrollment_detail(s, enrollment)
    wake_worker()
    return result
