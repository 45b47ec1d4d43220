"""What every trigger type is: a name, the event kinds it listens to, how it reads an event into facts,
a filter schema, and a match of filters against those facts.

The engine routes each domain event to the trigger types whose ``event_kinds`` contain its kind and
asks them for :class:`TriggerFacts`, so a new trigger type is one new module here and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from marshmallow import RAISE, Schema

from automations.registry import Registry

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from automations.store.models import DomainEvent


@dataclass(frozen=True)
class TriggerFacts:
    """What a trigger may look at: the event and the appointment and contact as they are now."""

    event_kind: str
    #: The appointment an enrollment would be for (enrollments are per workflow and appointment).
    appointment_id: str
    status: str | None = None
    previous_status: str | None = None
    calendar_id: str | None = None
    assigned_user_id: str | None = None
    is_recurring: bool = False
    contact_tags: tuple[str, ...] = ()
    modified_by: str | None = None
    extra: dict = field(default_factory=dict)


class FilterSchema(Schema):
    class Meta:
        unknown = RAISE


class TriggerType:
    name: ClassVar[str]
    filters_schema: ClassVar[type[Schema]] = FilterSchema
    #: Event kinds this trigger listens to.
    event_kinds: ClassVar[frozenset[str]] = frozenset()

    def facts(self, session: Session, event: DomainEvent) -> TriggerFacts | None:
        """What this trigger sees of an event of one of its ``event_kinds``; None if it cannot enroll."""
        raise NotImplementedError

    def matches(self, filters: dict, facts: TriggerFacts) -> bool:
        raise NotImplementedError

    def describe(self, facts: TriggerFacts) -> str:
        """Why it fired, for the enrollment log."""
        return f"{facts.event_kind} ({facts.status})" if facts.status else facts.event_kind

    def references(self, filters: dict) -> dict[str, list[str]]:
        """Entity ids the filters name, keyed by kind (calendars, users), checked at publish."""
        return {}


TRIGGER_TYPES: Registry[TriggerType] = Registry("trigger")
register = TRIGGER_TYPES.register


def listening_to(kind: str) -> list[TriggerType]:
    """The trigger types that listen to events of ``kind``."""
    return [ttype for ttype in TRIGGER_TYPES if kind in ttype.event_kinds]
