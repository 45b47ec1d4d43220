"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from automations.store.db import Base


def test_migrated_schema_matches_models(engine):
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_down_and_up_again_keeps_every_row(engine, factory, clock):
    """Batch-mode table rebuilds on SQLite must not cascade-delete referencing rows (a location's calendars,
    their appointments, ...): going back to 0003 and up again keeps every row (both databases)."""
    from datetime import timedelta

    from sqlalchemy import text

    from automations.store import migrate
    from tests.factories import book, make_world

    with factory() as s, s.begin():
        world = make_world(s, clock.now())
        book(s, world, clock.now(), start=clock.now() + timedelta(days=2))
    tables = ("locations", "users", "calendars", "calendar_members", "contacts", "appointments", "meetings")

    def counts() -> dict[str, int]:
        with engine.connect() as conn:
            return {t: conn.execute(text(f"select count(*) from {t}")).scalar_one() for t in tables}

    before = counts()
    assert all(before.values()), before
    migrate.downgrade(engine, "0003")
    assert counts() == before
    migrate.upgrade(engine)
    assert counts() == before
