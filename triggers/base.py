"""What every trigger type is: a name, a filter schema, and a match against a domain event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from marshmallow import RAISE, Schema

from automations.registry import Registry


@dataclass(frozen=True)
class TriggerFacts:
    """What a trigger may look at: the event and the appointment and contact as they are now."""

    event_kind: str
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

    def matches(self, filters: dict, facts: TriggerFacts) -> bool:
        raise NotImplementedError

    def references(self, filters: dict) -> dict[str, list[str]]:
        """Entity ids the filters name, keyed by kind (calendars, users), checked at publish."""
        return {}


TRIGGER_TYPES: Registry[TriggerType] = Registry("trigger")
register = TRIGGER_TYPES.register
