"""What the builder shows about a workflow document: step summaries in the seeds' words, the action
picker's groups, the merge-field picker's groups, and new step ids. Pure functions over the document."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from actions import STEP_TYPES
from automations.rendering import merge_fields

#: The action picker, grouped as HighLevel's ("Pick an action for this step").
ACTION_GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("External communications", [("send_email", "Send Email"), ("send_sms", "Send SMS"), ("call", "Call"),
                                 ("voicemail", "Voicemail")]),
    ("Internal", [("internal_notification", "Internal Notification"),
                  ("update_appointment_status", "Update appointment status")]),
    ("Wait", [("wait_time_delay", "Wait: time delay"), ("wait_appointment_time", "Wait: event / appointment time"),
              ("wait_condition", "Wait: until a condition"), ("wait_reply", "Wait: until the contact replies")]),
    ("Flow", [("if_else", "If / Else"), ("goto", "Go to step"), ("remove_from_workflow", "Remove from workflow")]),
    ("Premium actions", [("slack", "Slack"), ("webhook", "Custom Webhook")]),
]
#: Steps that send a message: the builder offers Preview and Send test on them.
MESSAGE_STEPS = frozenset({"send_email", "send_sms", "internal_notification", "call", "voicemail"})
TYPE_LABELS = {t: label for _, items in ACTION_GROUPS for t, label in items}

MERGE_GROUPS = [("contact", "Contact"), ("appointment", "Appointment"), ("user", "User"), ("calendar", "Calendar"),
                ("location", "Location"), ("custom_values", "Custom values"), ("right_now", "Right now")]


def type_label(step_type: str) -> str:
    return TYPE_LABELS.get(step_type, step_type.replace("_", " ").capitalize())


def merge_groups(known: merge_fields.KnownPaths) -> list[tuple[str, list[str]]]:
    paths = known.all_paths()
    groups = []
    for root, label in MERGE_GROUPS:
        items = [p for p in paths if p.split(".", 1)[0] == root]
        if items:
            groups.append((label, items))
    return groups


def new_step_id(steps: list[dict], step_type: str) -> str:
    taken = {s.get("id") for s in steps}
    base = re.sub(r"[^a-z0-9]+", "-", step_type.lower()).strip("-") or "step"
    n = 1
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _offset(step: dict) -> str:
    parts = [f"{step.get(u, 0)} {u[:-1] if step.get(u) == 1 else u}" for u in ("months", "days", "hours", "minutes")
             if step.get(u)]
    return ", ".join(parts) or "0 minutes"


def guard(spec: dict) -> str:
    """A step's ``skip_if_after`` in plain words."""
    if spec.get("direction") == "exact":
        return "Skipped if its moment has passed: the appointment's start time"
    return f"Skipped if its moment has passed: {_offset(spec)} {spec.get('direction')} the appointment"


PAST = {"next": "move to the next step", "goto": "move to step {target}",
        "skip_outbound": "skip all outbound communication until the next wait"}


def summary(step: dict, names: Mapping[Any, str]) -> str:
    """One line saying what the step does, in the builder's words."""
    t = step.get("type")
    if t == "wait_appointment_time":
        d = step.get("direction")
        when = "at the appointment's start time" if d == "exact" else f"until {_offset(step)} {d} the appointment"
        past = step.get("if_past") or {}
        action = PAST.get(past.get("action", "next"), "").format(target=names.get(past.get("target"), past.get("target")))
        return f"Wait {when}; if that time has already passed: {action}"
    if t == "wait_time_delay":
        win = step.get("window")
        extra = f" (advance window: {', '.join(win.get('days') or ['any day'])} {win.get('start') or ''}–{win.get('end') or ''})" if win else ""
        return f"Wait {step.get('amount')} {step.get('unit')}{extra}"
    if t == "send_sms":
        return f"Text: {(step.get('body') or '')[:90]}"
    if t == "send_email":
        return f"Email: {step.get('subject') or ''}"
    if t == "internal_notification":
        return f"{step.get('channel', '').replace('_', '-')} to {str(step.get('recipients', '')).replace('_', ' ')}: {(step.get('body') or '')[:70]}"
    if t == "goto":
        return f"Go to: {names.get(step.get('target'), step.get('target'))}"
    if t == "update_appointment_status":
        return f"Set the appointment status to {step.get('status')}"
    if t == "wait_reply":
        return f"Wait for a reply ({step.get('channel')})"
    if t == "wait_condition":
        return "Wait until a condition is met"
    if t in ("webhook", "slack"):
        return f"{t.capitalize()}: {step.get('url') or step.get('webhook_url') or ''}"
    return type_label(t or "")


def step_names(steps: list[dict]) -> dict[str, str]:
    return {s["id"]: f"{s.get('name') or type_label(s['type'])} ({s['id']})" for s in steps}


def step_choices(steps: list[dict], exclude: str | None = None) -> list[tuple[str, str]]:
    names = step_names(steps)
    return [(s["id"], names[s["id"]]) for s in steps if s["id"] != exclude] + [("end", "End the workflow")]


def known_step_type(step_type: str | None) -> TypeGuard[str]:
    return bool(step_type) and step_type in STEP_TYPES
