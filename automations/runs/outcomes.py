"""What running one step produced. The interpreter applies it and writes it to the log.

Steps return outcomes instead of moving the enrollment themselves, so exactly one place
(``interpreter.advance``) owns every state change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Outcome:
    #: next | goto | wait | exit | end (finish the workflow normally)
    kind: str
    #: The word in the enrollment log: sent, queued, skipped, waiting, resumed, moved, exited, failed, done.
    log: str
    reason: str
    target: str | None = None
    until: datetime | None = None
    wait_kind: str | None = None
    #: Turn on "skip outbound until the next wait" (the skip_outbound past-time policy).
    skip_outbound: bool = False
    #: A wait for a reply: (channel listened on, replies count from), kept on the enrollment.
    reply: tuple[str, datetime] | None = None
    detail: dict = field(default_factory=dict)

    @classmethod
    def next(cls, log: str, reason: str, **detail) -> Outcome:
        return cls("next", log, reason, detail=detail)

    @classmethod
    def goto(cls, target: str, log: str, reason: str, **detail) -> Outcome:
        return cls("goto", log, reason, target=target, detail=detail)

    @classmethod
    def wait(cls, until: datetime | None, wait_kind: str, reason: str, *,
             reply: tuple[str, datetime] | None = None, **detail) -> Outcome:
        return cls("wait", "waiting", reason, until=until, wait_kind=wait_kind, reply=reply, detail=detail)

    @classmethod
    def exit(cls, reason: str, **detail) -> Outcome:
        return cls("exit", "exited", reason, detail=detail)
