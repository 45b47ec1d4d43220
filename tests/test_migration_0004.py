"""Revision 0004 moves delivery state out of ``messages.template["_delivery"]`` into columns and back, on both
databases, and stamps existing messages with the appointment time and status they were about."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from automations.store import migrate
from automations.store.db import make_engine, make_session_factory
from tests.conftest import PG_URL, _postgres_available
from tests.factories import book, make_world

NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'm.db'}"
        return
    if not _postgres_available():
        pytest.skip("PostgreSQL not reachable")
    schema = f"punctual_mig_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _message(location_id: str, key: str, template: dict, appointment_id: str | None = None) -> dict:
    return {"id": uuid.uuid4().hex, "location_id": location_id, "idempotency_key": key, "channel": "sms",
            "audience": "contact", "to_address": "+12125550123", "outbound": True, "template": template,
            "needs_meeting_link": False, "status": "sent", "attempts": 1, "due_at": NOW.replace(tzinfo=None),
            "created_at": NOW.replace(tzinfo=None), "appointment_id": appointment_id}


def test_delivery_state_moves_into_columns_and_back(empty_url):
    engine = make_engine(empty_url)
    # The world is made with today's models, then the schema goes back to 0003 (later revisions keep rows).
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as s, s.begin():
        world = make_world(s, NOW)
        appt = book(s, world, NOW, start=NOW + timedelta(days=2))
        appt_id, appt_start = appt.id, appt.start_at
    migrate.downgrade(engine, "0003")
    delivery = {"provider_status": "delivered", "answered_by": "human", "resent_in_doubt": 2,
                "history": [{"at": NOW.isoformat(), "status": "sent"}], "num_segments": "1", "response": "secret"}
    messages = sa.Table("messages", sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(messages.insert(), [
            _message(world.location_id, "a", {"body": "hi", "_delivery": delivery}, appt_id),
            _message(world.location_id, "b", {"body": "plain"}),
        ])

    migrate.upgrade(engine, "0004")
    messages = sa.Table("messages", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        rows = {r.idempotency_key: r for r in conn.execute(sa.select(messages))}
    a, b = rows["a"], rows["b"]
    assert a.template == {"body": "hi"} and b.template == {"body": "plain"}
    assert (a.provider_status, a.answered_by, a.resent_in_doubt) == ("delivered", "human", 2)
    assert a.status_history == delivery["history"]
    assert a.provider_detail == {"num_segments": "1"}  # a stored remote response body is dropped
    assert (a.about_status, a.about_start_at.replace(tzinfo=UTC)) == ("confirmed", appt_start)
    assert (b.provider_status, b.resent_in_doubt, b.provider_detail, b.about_start_at) == (None, 0, None, None)

    migrate.downgrade(engine, "0003")
    messages = sa.Table("messages", sa.MetaData(), autoload_with=engine)
    assert "provider_status" not in messages.c and "about_status" not in messages.c
    with engine.connect() as conn:
        rows = {r.idempotency_key: r for r in conn.execute(sa.select(messages))}
    assert rows["a"].template["_delivery"] == {k: v for k, v in delivery.items() if k != "response"}
    assert rows["b"].template == {"body": "plain"}
    engine.dispose()
