"""What a step sees while it runs: the enrollment, its appointment and contact, the document,
the time, and the one way to send anything (``queue_message`` into the outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from sqlalchemy.orm import Session

from automations.rendering import merge_fields, render_context, time_window
from automations.runs.workflow_doc import WorkflowDoc
from automations.store.models import Appointment, Calendar, Contact, Enrollment, Location, Message, User

MEETING_LINK_PATH = "appointment.meeting_location"


@dataclass
class StepContext:
    session: Session
    now: datetime
    enrollment: Enrollment
    doc: WorkflowDoc
    step: dict
    location: Location
    contact: Contact
    appointment: Appointment | None

    @property
    def settings(self) -> dict:
        return self.doc.settings

    @cached_property
    def calendar(self) -> Calendar | None:
        return self.session.get(Calendar, self.appointment.calendar_id) if self.appointment else None

    @cached_property
    def assigned_user(self) -> User | None:
        if self.appointment and self.appointment.assigned_user_id:
            return self.session.get(User, self.appointment.assigned_user_id)
        return None

    def workflow_tz(self) -> str:
        """The workflow's time zone for advance windows: the contact's or the location's (a setting)."""
        if self.settings.get("timezone_mode") == "contact" and self.contact.timezone:
            return self.contact.timezone
        return self.location.timezone or "UTC"

    def appointment_tz(self) -> str:
        return (self.appointment.timezone if self.appointment else None) or self.location.timezone or "UTC"

    def facts(self) -> dict:
        """Raw values for conditions (if/else, wait for condition)."""
        return render_context.build_condition_facts(
            location=self.location,
            contact=self.contact,
            appointment=self.appointment,
            calendar=self.calendar,
            assigned_user=self.assigned_user,
            recipient_tz=self.contact.timezone or self.appointment_tz(),
            now=self.now,
        )

    def queue_message(
        self,
        *,
        channel: str,
        audience: str,
        to_address: str | None,
        template: dict,
        suffix: str = "0",
        user_id: str | None = None,
        outbound: bool = True,
    ) -> Message:
        """Write one message to the outbox. Its idempotency key is derived from the enrollment and its
        step counter, so a step re-run after a crash reuses the key instead of sending twice."""
        texts = [v for v in template.values() if isinstance(v, str)]
        needs_link = any(merge_fields.uses_path(t, MEETING_LINK_PATH) for t in texts)
        link_settings = self.settings.get("meeting_link") or {}
        if needs_link:
            template = {**template, "meeting_link_policy": link_settings.get("policy", "fallback")}
        # Quiet hours: an outbound send outside the workflow's time window is due at its next opening.
        window = time_window.stamp(self.settings.get("time_window"), self.workflow_tz()) if outbound else None
        if window:
            template = {**template, "time_window": window}
        message = Message(
            location_id=self.location.id,
            idempotency_key=f"{self.enrollment.id}:{self.enrollment.step_seq}:{suffix}",
            enrollment_id=self.enrollment.id,
            step_id=self.step["id"],
            channel=channel,
            audience=audience,
            contact_id=self.contact.id if audience == "contact" else None,
            user_id=user_id,
            appointment_id=self.appointment.id if self.appointment else None,
            about_start_at=self.appointment.start_at if self.appointment else None,
            about_status=self.appointment.status if self.appointment else None,
            to_address=to_address,
            outbound=outbound,
            template=template,
            needs_meeting_link=needs_link,
            hold_until=self.now + timedelta(seconds=link_settings.get("wait_seconds", 900)) if needs_link else None,
            status="pending",
            due_at=time_window.opening(window, self.now),
            created_at=self.now,
        )
        self.session.add(message)
        if audience == "contact" and outbound:
            self.enrollment.sends = (self.enrollment.sends or 0) + 1
        return message
