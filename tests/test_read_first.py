"""SQLite's read-first transactions (``store.db.transaction(read_first=True)`` and ``take_writer``): they
read without the writer, so other writers go on meanwhile; a write before ``take_writer`` is refused, never
let past the writer lock; after it, reads see what others committed, and the connection goes back to the
pool able to write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from automations.store.db import make_engine, make_session_factory, take_writer, transaction
from automations.store.models import Location
from tests.background import Background


@pytest.fixture(name="factory")
def sqlite_factory(sqlite_url):
    engine = make_engine(sqlite_url)
    yield make_session_factory(engine)
    engine.dispose()


def _locations(session) -> int:
    return session.scalar(select(func.count()).select_from(Location))


def _add_location(factory, name: str) -> None:
    with transaction(factory) as s:
        s.execute(text("INSERT INTO locations (id, name, timezone, custom_values, custom_field_keys, created_at) "
                       "VALUES (:id, :name, 'UTC', '{}', '[]', '2026-12-01 00:00:00')"), {"id": name, "name": name})


def test_a_read_first_transaction_holds_no_writer_until_it_takes_it(factory):
    with transaction(factory, read_first=True) as s:
        before = _locations(s)
        other = Background(lambda: _add_location(factory, "loc-during-read"))
        assert other.finished_within(20), "the other writer waited: the read-first transaction held the writer"
        other.reraise()
        take_writer(s)
        assert _locations(s) == before + 1  # the write committed meanwhile is seen once we are the writer
        s.execute(text("UPDATE locations SET name = 'renamed' WHERE id = 'loc-during-read'"))
    with factory() as s:
        assert s.scalar(select(Location.name).where(Location.id == "loc-during-read")) == "renamed"


def test_a_write_before_take_writer_is_refused_and_nothing_is_kept(factory):
    _add_location(factory, "kept")
    with pytest.raises(Exception, match="readonly"), transaction(factory, read_first=True) as s:
        s.execute(text("DELETE FROM locations"))
    with factory() as s:
        assert s.get(Location, "kept") is not None
    _add_location(factory, "after-refusal")  # the pooled connection writes again (query_only was reset)
    with factory() as s:
        assert s.get(Location, "after-refusal") is not None


def test_orm_changes_take_the_writer_at_the_end_and_commit(factory):
    _add_location(factory, "orm")
    with transaction(factory, read_first=True) as s:
        s.get(Location, "orm").name = "changed by the ORM"  # flushed at commit, after take_writer
    with factory() as s:
        assert s.get(Location, "orm").name == "changed by the ORM"


def test_take_writer_inside_a_savepoint_is_refused(factory):
    with pytest.raises(RuntimeError, match="savepoint"), transaction(factory, read_first=True) as s:
        _locations(s)
        with s.begin_nested():
            take_writer(s)


def test_take_writer_is_a_no_op_in_an_ordinary_transaction(factory):
    with transaction(factory) as s:
        take_writer(s)
        take_writer(s)
        s.execute(text("UPDATE locations SET name = name"))
