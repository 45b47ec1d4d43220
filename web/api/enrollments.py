"""``/api/v1/enrollments``: who is in which workflow for which appointment, and, for one enrollment,
its log — every step's outcome with its reason, in order."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import fields, validate

from automations.store.models import Enrollment
from automations.store.states import EnrollmentState
from web.api import responses as out
from web.api import serialize
from web.api.common import Id, PageQuery, doc, owned, page, paginate, query_args, scoped, tx

bp = Blueprint("enrollments", __name__)


class EnrollmentListQuery(PageQuery):
    workflow_id = Id()
    appointment_id = Id()
    contact_id = Id()
    state = fields.String(validate=validate.OneOf([s.value for s in EnrollmentState]))


@bp.get("/enrollments")
@doc("List enrollments, oldest first", query=EnrollmentListQuery, response=out.EnrollmentOut, many=True)
def list_enrollments() -> ResponseReturnValue:
    args = query_args(EnrollmentListQuery())
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
