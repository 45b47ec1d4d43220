"""The workflow time window ("quiet hours"): outbound sends only go out inside it.

A workflow setting ``time_window`` (``{"days": ["mon", ...], "start": "09:00", "end": "17:00"}``, the
same shape as a time-delay step's advance window) is stamped onto every outbound message when it is
queued, together with the workflow's time zone. The message is due at the window's next opening, and
delivery checks again before each attempt (a retry or a meeting-link hold may drift outside it).
"""

from __future__ import annotations

from datetime import datetime

from automations.rendering import timecalc


def parse(window: dict) -> timecalc.AdvanceWindow:
    return timecalc.AdvanceWindow.parse(window.get("days") or [], window.get("start"), window.get("end"),
                                        path_prefix="settings.time_window")


def stamp(window: dict | None, tz: str) -> dict | None:
    """What a queued message carries: the window and the zone it is read in."""
    if not window or not (window.get("days") or window.get("start")):
        return None
    return {"days": list(window.get("days") or []), "start": window.get("start"), "end": window.get("end"), "tz": tz}


def opening(stamped: dict | None, now: datetime) -> datetime:
    """The first instant at or after ``now`` inside the stamped window (``now`` when there is none)."""
    if not stamped:
        return now
    return timecalc.delay_until(now, amount=0, unit="seconds", window=parse(stamped), tz=stamped.get("tz") or "UTC")


def held_note(message, now: datetime) -> str:
    """A note for the step's log line when the window holds the message past ``now``."""
    if message.due_at > now and (message.template or {}).get("time_window"):
        return f" (held for the workflow's time window until {message.due_at.isoformat()})"
    return ""
