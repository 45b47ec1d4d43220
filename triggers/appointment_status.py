"""Trigger ``appointment_status``: fires on booking and on every status change.

Filters, all optional and AND-ed: event type (any, normal, recurring), statuses (none = all),
calendars, assigned users, contact tags (any of them), modified by (api, customer, user, workflow).
"""

from __future__ import annotations

from marshmallow import fields, validate
from sqlalchemy.orm import Session

from automations.store.models import Appointment, Contact, DomainEvent
from automations.store.states import AppointmentStatus, EventKind, ModifiedBy
from triggers.base import FilterSchema, TriggerFacts, TriggerType, register


class AppointmentStatusFilters(FilterSchema):
    event_type = fields.String(load_default="any", validate=validate.OneOf(["any", "normal", "recurring"]))
    statuses = fields.List(fields.String(validate=validate.OneOf([s.value for s in AppointmentStatus])), load_default=list)
    calendars = fields.List(fields.String(), load_default=list)
    assigned_users = fields.List(fields.String(), load_default=list)
    contact_tags = fields.List(fields.String(), load_default=list)
    modified_by = fields.List(fields.String(validate=validate.OneOf([m.value for m in ModifiedBy])), load_default=list)


@register("appointment_status")
class AppointmentStatusTrigger(TriggerType):
    filters_schema = AppointmentStatusFilters
    event_kinds = frozenset({EventKind.APPOINTMENT_BOOKED, EventKind.APPOINTMENT_STATUS})

    def facts(self, session: Session, event: DomainEvent) -> TriggerFacts | None:
        appointment = session.get(Appointment, event.appointment_id) if event.appointment_id else None
        if appointment is None:
            return None
        contact = session.get(Contact, appointment.contact_id)
        if contact is None:
            return None  # an enrollment needs its contact
        return TriggerFacts(
            event_kind=event.kind,
            appointment_id=appointment.id,
            status=event.payload.get("status"),
            previous_status=event.payload.get("previous_status"),
            calendar_id=appointment.calendar_id,
            assigned_user_id=appointment.assigned_user_id,
            is_recurring=appointment.is_recurring,
            contact_tags=tuple(contact.tags or ()),
            modified_by=event.payload.get("modified_by"),
        )

    def describe(self, facts: TriggerFacts) -> str:
        return f"appointment {facts.event_kind.split('.')[-1].replace('_', ' ')} ({facts.status})"

    def matches(self, filters: dict, facts: TriggerFacts) -> bool:
        if facts.event_kind not in self.event_kinds:
            return False
        event_type = filters.get("event_type", "any")
        if event_type == "normal" and facts.is_recurring:
            return False
        if event_type == "recurring" and not facts.is_recurring:
            return False
        checks = (
            (filters.get("statuses"), facts.status),
            (filters.get("calendars"), facts.calendar_id),
            (filters.get("assigned_users"), facts.assigned_user_id),
            (filters.get("modified_by"), facts.modified_by),
        )
        if any(allowed and value not in allowed for allowed, value in checks):
            return False
        tags = filters.get("contact_tags")
        if tags:
            have = {t.lower() for t in facts.contact_tags}
            if not any(t.lower() in have for t in tags):
                return False
        return True

    def references(self, filters: dict) -> dict[str, list[str]]:
        return {"calendars": filters.get("calendars", []), "users": filters.get("assigned_users", [])}
