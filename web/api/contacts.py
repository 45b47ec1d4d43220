"""``/api/v1/contacts``: list, create, get, and patch contacts (a patch emits ``contact.updated``,
which re-checks wait-for-condition steps)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import ValidationError as MarshmallowError
from marshmallow import fields, validate, validates_schema
from sqlalchemy.orm import Session

from automations.booking import contacts, privacy
from automations.errors import ValidationError
from automations.store.models import Contact
from automations.store.states import ModifiedBy
from web.api import responses as out
from web.api import serialize
from web.api.common import (
    BodySchema,
    PageQuery,
    Scalar,
    StrictBoolean,
    TimeZone,
    doc,
    json_body,
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

bp = Blueprint("contacts", __name__)


class ContactPatch(BodySchema):
    """The editable contact fields; lengths match the columns so nothing is refused late by the database."""

    first_name = fields.String(validate=validate.Length(max=100))
    last_name = fields.String(validate=validate.Length(max=100))
    email = fields.Email(allow_none=True, validate=validate.Length(max=320))
    # Normalized to E.164 by automations.booking.contacts (US numbers may omit +1).
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))
    timezone = TimeZone(allow_none=True)
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=100)), validate=validate.Length(max=100))
    custom_fields = fields.Dict(keys=fields.String(validate=validate.Length(max=100)),
                                values=Scalar(allow_none=True))
    sms_dnd = StrictBoolean()
    email_dnd = StrictBoolean()


IDENTIFYING = ("first_name", "last_name", "email", "phone")


class ContactCreate(ContactPatch):
    first_name = fields.String(load_default="", validate=validate.Length(max=100))
    last_name = fields.String(load_default="", validate=validate.Length(max=100))

    @validates_schema
    def _identifiable(self, data: dict, **_kw) -> None:
        if not any(data.get(k) for k in IDENTIFYING):
            raise MarshmallowError("give at least one of first_name, last_name, email or phone")

    #: The rule above, for the OpenAPI document (``web.openapi`` merges it into the component).
    json_schema_extra = {"anyOf": [{"required": [k], "properties": {k: {"type": "string", "minLength": 1}}}
                                 for k in IDENTIFYING]}


class ContactListQuery(PageQuery):
    email = fields.String(validate=validate.Length(max=320))


def create_contact(session: Session, data: dict, prefix: str = "") -> Contact:
    """Create a contact; engine validation paths (``phone``) get ``prefix`` (``contact.phone``)."""
    try:
        return contacts.create(session, location(session), data, now=now())
    except ValidationError as exc:
        if not prefix:
            raise
        fields_ = {f"{prefix}.{path}": reasons for path, reasons in exc.fields.items()}
        raise ValidationError(f"{prefix}.{exc.message}", fields=fields_) from None


@bp.get("/contacts")
@doc("List contacts, oldest first", query=ContactListQuery, response=out.ContactOut, many=True)
def list_contacts() -> ResponseReturnValue:
    args = query_args(ContactListQuery)
    with tx() as s:
        query = scoped(Contact)
        if args.get("email"):
            query = query.where(Contact.email == args["email"])
        rows, cursor = paginate(s, query, Contact, args)
        return page([serialize.contact(c) for c in rows], cursor)


@bp.post("/contacts")
@doc("Create a contact", body=ContactCreate, response=out.ContactOut, status=201)
def create() -> ResponseReturnValue:
    data = json_body(ContactCreate)
    with tx() as s:
        result = serialize.contact(create_contact(s, data))
    return result, 201


@bp.get("/contacts/<contact_id>")
@doc("Get a contact", response=out.ContactOut)
def get(contact_id: str) -> ResponseReturnValue:
    with tx() as s:
        return serialize.contact(owned(s, Contact, contact_id))


@bp.patch("/contacts/<contact_id>")
@doc("Update some of a contact's fields (emits contact.updated when anything changed)", body=ContactPatch,
     response=out.ContactOut)
def patch(contact_id: str) -> ResponseReturnValue:
    data = json_body(ContactPatch)
    with tx() as s:
        contact = owned(s, Contact, contact_id)
        changed = contacts.update(s, location(s), contact, data, now=now())
        result = serialize.contact(contact)
    if changed:
        wake_worker()
    return result


@bp.delete("/contacts/<contact_id>")
@doc("Erase a contact's personal data: upcoming appointments cancelled (their reminders stop, meetings "
     "dropped), unsent messages withdrawn, and name, email, phone and fields blanked from the contact, its "
     "messages, replies, logs and staff notes. The contact is then gone from the API (404).", status=204)
def erase(contact_id: str) -> ResponseReturnValue:
    with tx() as s:
        privacy.erase_contact(s, owned(s, Contact, contact_id), now=now(), modified_by=ModifiedBy.API)
    wake_worker()
    return "", 204


@bp.get("/contacts/<contact_id>/export")
@doc("Everything held about one contact, as JSON: the contact, appointments, enrollments with their logs, "
     "messages and replies", response=out.ContactExportOut)
def export(contact_id: str) -> ResponseReturnValue:
    with tx() as s:
        data = privacy.export_contact(s, owned(s, Contact, contact_id))
        return serialize.contact_export(s, data, now())
