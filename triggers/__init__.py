"""Trigger types. Every module is imported here so the registry is complete at start-up."""

from triggers import appointment_status  # noqa: F401
from triggers.base import TRIGGER_TYPES, TriggerFacts, TriggerType, listening_to

__all__ = ["TRIGGER_TYPES", "TriggerFacts", "TriggerType", "listening_to"]
