"""``automations.zoom.connections`` rules that need no Zoom: who may choose Zoom for whom, location
normalisation, the once-a-day budget note, budget reset at midnight, and marking a connection broken."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from automations.errors import Conflict, Forbidden, ValidationError
from automations.store.models import Notification, User, ZoomConnection
from automations.zoom import connections as zc


def _connect(session, user_id: str, location_id: str, now, *, status: str = "active") -> ZoomConnection:
    conn = ZoomConnection(location_id=location_id, user_id=user_id, zoom_user_id=f"z-{user_id}",
                          access_token_enc="enc-a", refresh_token_enc="enc-r", status=status,
                          created_at=now, updated_at=now, budget_used=0)
    session.add(conn)
    session.flush()
    return conn


def test_location_values_are_normalised():
    assert zc.normalize_location(None) is None
    assert zc.normalize_location("   ") is None
    assert zc.normalize_location(" ZOOM ") == "zoom"
    assert zc.normalize_location(" https://meet.example.com/x ") == "https://meet.example.com/x"
    with pytest.raises(ValidationError):
        zc.normalize_location("x" * 1001)


def test_who_may_choose_zoom_for_whom(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        alice, bob = s.get(User, world.alice_id), s.get(User, world.bob_id)
        # A user may pick Zoom for themselves before connecting (they are then asked to connect) ...
        zc.set_default_location(s, bob, "zoom", apply_to_calendars=False, now=now, acting_user=bob)
        assert bob.default_meeting_location == "zoom"
        # ... a non-admin may not change someone else's ...
        with pytest.raises(Forbidden):
            zc.set_default_location(s, alice, "zoom", apply_to_calendars=False, now=now, acting_user=bob)
        # ... and an admin (or the API) only once that user has connected.
        with pytest.raises(Conflict):
            zc.set_default_location(s, bob, "zoom", apply_to_calendars=False, now=now, acting_user=alice)
        _connect(s, bob.id, world.location_id, now)
        assert zc.set_default_location(s, bob, "zoom", apply_to_calendars=True, now=now, acting_user=alice) == 0
        assert zc.set_default_location(s, bob, "Room 1", apply_to_calendars=True, now=now, acting_user=alice) == 1
        # A broken connection does not count as connected.
        s.scalar(select(ZoomConnection)).status = "broken"
        with pytest.raises(Conflict):
            zc.set_default_location(s, bob, "zoom", apply_to_calendars=False, now=now)


def test_budget_note_once_per_utc_day_and_reset_at_midnight(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        conn = _connect(s, world.alice_id, world.location_id, now)
        conn.budget_day, conn.budget_used = zc.utc_day(now), 100
        retry = now.replace(hour=0, minute=0) + timedelta(days=1)
        assert zc.note_daily_limit(s, world.alice_id, world.location_id, now, retry) is True
        assert zc.note_daily_limit(s, world.alice_id, world.location_id, now + timedelta(hours=3), retry) is False
        assert zc.reset_budgets(s, now) == 0  # same day: nothing to reset
        assert zc.reset_budgets(s, retry) == 1
        s.refresh(conn)  # a bulk update: re-read the row
        assert (conn.budget_day, conn.budget_used) == (zc.utc_day(retry), 0)
        assert zc.note_daily_limit(s, world.alice_id, world.location_id, retry + timedelta(hours=1), retry) is True
        count = s.scalar(select(func.count()).select_from(Notification).where(Notification.title == zc.BUDGET_NOTE_TITLE))
        assert count == 2


def test_mark_broken_alerts_once_and_drops_dead_tokens(factory, world, clock):
    now = clock.now()
    with factory() as s, s.begin():
        _connect(s, world.alice_id, world.location_id, now)
        assert zc.mark_broken(s, world.alice_id, "invalid_grant", now) is True
        assert zc.mark_broken(s, world.alice_id, "invalid_grant", now) is False
        conn = s.scalar(select(ZoomConnection))
        assert (conn.status, conn.access_token_enc, conn.refresh_token_enc) == ("broken", None, None)
        titles = s.scalars(select(Notification.title)).all()
        assert titles == [zc.BROKEN_NOTE_TITLE]
        assert zc.mark_broken(s, world.bob_id, "no connection", now) is False
