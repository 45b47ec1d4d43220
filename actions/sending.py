"""What every sending step shares: where the sender details come from."""

from __future__ import annotations

from automations.runs.step_context import StepContext


def sender(ctx: StepContext, step: dict, *keys: str) -> dict:
    """Sender fields (``from_name``, ``from_email``, ``from_number``): the step's own values, else the
    workflow settings'."""
    return {k: step.get(k) or ctx.settings.get(k) for k in keys}
