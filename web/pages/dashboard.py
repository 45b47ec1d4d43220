"""The dashboard: messages per day per channel (an inline SVG chart drawn on the server), what is due in
the next 24 hours, and failures needing attention (broken Zoom connections, failed deliveries)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import g, render_template
from sqlalchemy import select

from automations.store.models import Contact, Enrollment, Message, User, Workflow, ZoomConnection
from automations.store.states import EnrollmentState, MessageStatus
from web.api.common import now, tx
from web.pages.base import bp, login_required

DAYS = 14
CHANNEL_COLORS = {"email": "#2563eb", "sms": "#16a34a", "in_app": "#9333ea", "call": "#ea580c",
                  "voicemail": "#ca8a04", "webhook": "#0891b2", "slack": "#db2777"}


def chart(counts: dict[tuple[str, str], int], days: list[str]) -> dict:
    """Grouped bars: one group per day, one bar per channel; everything the SVG template needs."""
    channels = sorted({ch for _, ch in counts})
    peak = max(counts.values(), default=0) or 1
    width, height, left, bottom = 720, 220, 36, 28
    group = (width - left) / max(len(days), 1)
    bar = max(2.0, (group - 6) / max(len(channels), 1))
    bars = []
    for i, day in enumerate(days):
        for j, ch in enumerate(channels):
            n = counts.get((day, ch), 0)
            h = (height - bottom - 10) * n / peak
            bars.append({"x": left + i * group + 3 + j * bar, "y": height - bottom - h, "w": bar - 1, "h": h,
                         "color": CHANNEL_COLORS.get(ch, "#64748b"), "title": f"{day} {ch}: {n}"})
    ticks = [{"x": left + i * group + group / 2, "label": d[5:]} for i, d in enumerate(days)]
    return {"bars": bars, "ticks": ticks, "channels": [(c, CHANNEL_COLORS.get(c, "#64748b")) for c in channels],
            "peak": peak, "width": width, "height": height, "left": left, "bottom": bottom,
            "total": sum(counts.values())}


@bp.get("/")
@login_required
def dashboard():
    at = now()
    tz = g.user.tz
    days = [(at.astimezone(tz) - timedelta(days=DAYS - 1 - i)).strftime("%Y-%m-%d") for i in range(DAYS)]
    since = at - timedelta(days=DAYS)
    with tx() as s:
        counts: dict[tuple[str, str], int] = {}
        for created, channel in s.execute(select(Message.created_at, Message.channel).where(
                Message.location_id == g.location_id, Message.created_at >= since)):
            day = _local_day(created, tz)
            if day in days:
                counts[(day, channel)] = counts.get((day, channel), 0) + 1
        upcoming_messages = list(s.scalars(select(Message).where(
            Message.location_id == g.location_id, Message.status == MessageStatus.PENDING,
            Message.due_at <= at + timedelta(hours=24)).order_by(Message.due_at).limit(20)))
        upcoming_waits = s.execute(select(Enrollment, Workflow.name, Contact).join(Workflow, Workflow.id == Enrollment.workflow_id)
                                   .join(Contact, Contact.id == Enrollment.contact_id)
                                   .where(Enrollment.location_id == g.location_id,
                                          Enrollment.state == EnrollmentState.WAITING,
                                          Enrollment.wake_at <= at + timedelta(hours=24))
                                   .order_by(Enrollment.wake_at).limit(20)).all()
        broken = s.execute(select(ZoomConnection, User).join(User, User.id == ZoomConnection.user_id).where(
            ZoomConnection.location_id == g.location_id, ZoomConnection.status == "broken")).all()
        failed = list(s.scalars(select(Message).where(
            Message.location_id == g.location_id,
            Message.status.in_([MessageStatus.FAILED, MessageStatus.UNDELIVERED]),
            Message.created_at >= at - timedelta(days=7)).order_by(Message.created_at.desc()).limit(20)))
        contacts = {c.id: c for c in s.scalars(select(Contact).where(Contact.id.in_(
            {m.contact_id for m in upcoming_messages + failed if m.contact_id})))}
        return render_template("dashboard.html", chart=chart(counts, days), upcoming_messages=upcoming_messages,
                               upcoming_waits=upcoming_waits, broken=broken, failed=failed, contacts=contacts)


def _local_day(value: datetime, tz) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d")
