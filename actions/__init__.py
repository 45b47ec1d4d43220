"""Step types. Every module is imported here, explicitly, so the registry is complete at start-up."""

from actions import (  # noqa: F401
    call,
    goto,
    if_else,
    internal_notification,
    remove_from_workflow,
    send_email,
    send_sms,
    slack,
    update_appointment_status,
    voicemail,
    wait_appointment_time,
    wait_condition,
    wait_reply,
    wait_time_delay,
    webhook,
)
from actions.base import STEP_TYPES, StepType

__all__ = ["STEP_TYPES", "StepType"]
