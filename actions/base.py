"""What every step type is: a name, a config schema, and how it runs.

Step types register themselves in ``STEP_TYPES`` by name; the workflow schema validates each step
with its type's schema, and the interpreter asks the type to ``run`` (on arrival) or ``resume``
(when a wait it started comes due or an event wakes it). ``branch`` is how a step that names where
to go (``on_true``, ``on_reply``, a branch's ``target``) turns that into an outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from marshmallow import RAISE, Schema, fields, validate

from actions.timing import SkipIfAfterSchema
from automations.registry import Registry
from automations.runs.outcomes import Outcome
from automations.runs.workflow_doc import END

if TYPE_CHECKING:
    from automations.runs.step_context import StepContext

STEP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class StepSchema(Schema):
    """Fields every step has. ``next`` overrides the default of falling through to the following step."""

    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=validate.Regexp(STEP_ID_PATTERN, error="must be 1-64 letters, digits, _ . -"))
    type = fields.String(required=True)
    name = fields.String(load_default="", validate=validate.Length(max=200))
    next = fields.String(load_default=None, allow_none=True)
    #: Skip this step when it is reached after this moment relative to the appointment's start
    #: (``{"direction": "before", "minutes": 45}``): a note "in 1 hour" never goes out late.
    skip_if_after = fields.Nested(SkipIfAfterSchema, load_default=None, allow_none=True)


class StepType:
    name: ClassVar[str]
    schema: ClassVar[type[Schema]] = StepSchema
    #: Outbound actions (email, SMS, call, voicemail) are the ones skip_outbound skips.
    outbound: ClassVar[bool] = False
    is_wait: ClassVar[bool] = False
    #: Keys of the step holding merge-field templates, validated at publish.
    template_fields: ClassVar[tuple[str, ...]] = ()

    def targets(self, step: dict) -> dict[str, str]:
        """Step ids this step may jump to, keyed by the field that names them (checked to exist)."""
        return {}

    def successors(self, step: dict) -> list[str | None]:
        """Where a run may go after this step: step ids, ``END``, or None for "the step after it"
        (its ``next`` override, else the following step). Used to find loops at publish."""
        return [*self.targets(step).values(), None]

    def holds(self, step: dict) -> bool:
        """Whether arriving here always lets time pass before the next step runs. Only such a step
        breaks a loop: other waits can finish at once (the moment passed, the condition holds)."""
        return False

    def conditions(self, step: dict) -> dict[str, dict]:
        """The step's conditions keyed by their path in the step (checked for unknown fields)."""
        return {}

    def run(self, ctx: StepContext) -> Outcome:
        raise NotImplementedError

    def resume(self, ctx: StepContext, cause: str) -> Outcome:
        """Only waits are resumed: ``cause`` is ``due`` (wake time reached) or ``event``."""
        raise NotImplementedError(f"{self.name} does not wait")


class BranchingWait(StepType):
    """A wait that leaves through one of ``exits``, fields naming where to go (a step id, ``end``, or empty
    for the step after it), e.g. ``on_reply`` / ``on_timeout``."""

    is_wait = True
    exits: ClassVar[tuple[str, ...]] = ()

    def targets(self, step: dict) -> dict[str, str]:
        return {k: step[k] for k in self.exits if step.get(k) and step[k] != END}

    def successors(self, step: dict) -> list[str | None]:
        return [step.get(k) for k in self.exits]


def branch(ctx: StepContext, target: str | None, log: str, reason: str) -> Outcome:
    """Go to ``target`` (a step id, ``end``, or None for the next step)."""
    if target == END:
        return Outcome("end", log, reason)
    if target:
        return Outcome.goto(target, log, reason)
    return Outcome.next(log, reason)


STEP_TYPES: Registry[StepType] = Registry("step")
register = STEP_TYPES.register
