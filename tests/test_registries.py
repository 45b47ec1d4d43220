"""The registries hold exactly the documented step and trigger types, and reject duplicates."""

from __future__ import annotations

import pytest

from actions import STEP_TYPES
from automations.errors import DuplicateType, UnknownType
from automations.registry import Registry
from triggers import TRIGGER_TYPES


def test_step_types_are_the_documented_set():
    assert STEP_TYPES.names() == sorted([
        "call", "goto", "if_else", "internal_notification", "remove_from_workflow", "send_email", "send_sms",
        "slack", "update_appointment_status", "voicemail", "wait_appointment_time", "wait_condition",
        "wait_reply", "wait_time_delay", "webhook",
    ])


def test_outbound_and_wait_flags():
    outbound = {t.name for t in STEP_TYPES if t.outbound}
    waits = {t.name for t in STEP_TYPES if t.is_wait}
    # DESIGN.md: call and voicemail are outbound (skip_outbound skips them); webhook and Slack are not.
    assert outbound == {"send_email", "send_sms", "call", "voicemail"}
    assert waits == {"wait_time_delay", "wait_appointment_time", "wait_condition", "wait_reply"}


def test_trigger_types():
    assert TRIGGER_TYPES.names() == ["appointment_status"]


def test_unknown_and_duplicate_names():
    reg: Registry[object] = Registry("thing")

    @reg.register("a")
    class A:
        pass

    with pytest.raises(DuplicateType):
        reg.register("a")(type("B", (), {}))
    with pytest.raises(UnknownType) as info:
        reg.get("nope")
    assert "nope" in str(info.value)
