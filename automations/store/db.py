"""Database plumbing: the declarative base, UTC datetimes, engines and sessions.

SQLite is the default (one machine); PostgreSQL serves many workers. On SQLite we take control of
transactions (pysqlite's own handling breaks savepoints) and open every transaction with
``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a read lock; WAL lets readers go on. A hot
path whose first reads decide nothing that could change under it (a booking's calendar) can read first
and take the writer only for the part that must run alone (``transaction(read_first=True)``,
``take_writer``).
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    DateTime,
    Engine,
    Result,
    Select,
    Table,
    create_engine,
    event,
    or_,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import JSON, TypeDecorator

from automations.errors import NotFound

M = TypeVar("M")

#: Execution option for a transaction that only reads (``read_only_session``): on SQLite it begins
#: without taking the write lock.
READ_ONLY = "punctual_read_only"
#: Execution option for a transaction that reads first and writes after ``take_writer`` (``transaction(...,
#: read_first=True)``): on SQLite it begins as a reader, so its reads do not hold up other writers.
READ_FIRST = "punctual_read_first"
_HOLDS_WRITER = "punctual_holds_writer"
_READING_FIRST = "punctual_reading_first"
#: Each SQLite engine's writer lock, for ``take_writer``.
_WRITERS: weakref.WeakKeyDictionary[Engine, WriterLock] = weakref.WeakKeyDictionary()


class UTCDateTime(TypeDecorator):
    """Stores naive UTC, hands back aware UTC, refuses naive input (a naive time is a bug)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict: JSON, list: JSON}


def worker_id() -> str:
    """A name for this process in lease columns (host, pid and a random part: pids are reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def make_engine(url: str, **kw) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        # Connections past the pool's size are closed on return and reopened (file, PRAGMAs) on the next
        # checkout: keep enough for every server thread.
        kw.setdefault("pool_size", 16)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kw)
        _configure_sqlite(engine)
        return engine
    kw.setdefault("pool_pre_ping", True)
    kw.setdefault("pool_size", 10)
    return create_engine(url, **kw)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    # One writer at a time, queued on a lock: waiting in SQLite's busy handler instead means sleeping
    # in steps of up to 100 ms while the write lock sits free (many threads, one file).
    writer = _WRITERS[engine] = WriterLock(engine.url.database)

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        options = conn.get_execution_options()
        if options.get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")  # a WAL reader: takes no write lock, waits for no writer
            return
        if options.get(READ_FIRST):
            # A reader until take_writer; query_only turns a write before it into an error, never a
            # write that slipped past the writer lock.
            conn.exec_driver_sql("BEGIN")
            conn.exec_driver_sql("PRAGMA query_only = 1")
            conn.info[_READING_FIRST] = True
            return
        _begin_writing(conn.connection.dbapi_connection, writer)
        conn.info[_HOLDS_WRITER] = True

    def _end(conn, statement: str) -> None:
        raw = conn.connection.dbapi_connection
        if conn.info.pop(_READING_FIRST, False):
            raw.execute("ROLLBACK")  # it wrote nothing
            raw.execute("PRAGMA query_only = 0")
        if conn.info.pop(_HOLDS_WRITER, False):
            try:  # end it here, so the lock is only handed on once SQLite's is free
                raw.execute(statement)
            finally:
                writer.release()

    event.listen(engine, "commit", lambda conn: _end(conn, "COMMIT"))
    event.listen(engine, "rollback", lambda conn: _end(conn, "ROLLBACK"))


def _begin_writing(raw: Any, writer: WriterLock) -> None:
    writer.acquire()
    try:
        raw.execute("BEGIN IMMEDIATE")
    except BaseException:
        writer.release()
        raise


def take_writer(session: Session) -> None:
    """From here on the session's transaction is the writer (a no-op when it already is, and on PostgreSQL,
    where the caller locks rows). In a ``read_first`` transaction on SQLite this ends the read and begins
    the write: what is read after this sees every write committed before it, and nothing else writes
    until this commits. Rows loaded before stay as they were read (as on PostgreSQL under READ COMMITTED,
    where a row read before its lock may have changed), so call it before reading what a decision rests on."""
    conn = session.connection()
    if not conn.info.get(_READING_FIRST):
        return
    if session.in_nested_transaction():  # ending the read would end the savepoint with it
        raise RuntimeError("take_writer inside a savepoint of a read-first transaction")
    raw: Any = conn.connection.dbapi_connection
    raw.execute("ROLLBACK")
    raw.execute("PRAGMA query_only = 0")
    del conn.info[_READING_FIRST]
    _begin_writing(raw, _WRITERS[conn.engine])
    conn.info[_HOLDS_WRITER] = True


class WriterLock:
    """The SQLite writer's turn: a thread lock, and across processes (the web server and its embedded
    worker) an ``flock`` on a file beside the database, which the kernel hands to the next waiter the
    moment it is released. Reentrant in a thread; an in-memory database needs only the thread lock."""

    def __init__(self, database: str | None) -> None:
        self._thread = threading.RLock()
        self._depth = 0
        self._path = f"{database}-writer.lock" if database and database != ":memory:" and \
            not database.startswith("file:") else None
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        self._thread.acquire()
        if self._depth == 0 and self._path is not None:
            try:
                if self._fd is None or self._pid != os.getpid():
                    # Our own open file: one inherited over fork would be shared with the parent (no exclusion).
                    self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread.release()
                raise
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread.release()


def is_postgres(engine_or_session) -> bool:
    bind = engine_or_session.get_bind() if isinstance(engine_or_session, Session) else engine_or_session
    return bind.dialect.name == "postgresql"


_M = TypeVar("_M")


def get_row(session: Session, model: type[_M], row_id: object) -> _M:
    """``session.get`` for a row that must exist (a foreign key points at it): NotFound naming the model and
    id if it is gone, instead of an AttributeError on None further down."""
    row = session.get(model, row_id)
    if row is None:
        raise NotFound(f"{model.__name__} {row_id} not found")
    return row


def table_of(model: type[Base]) -> Table:
    """A mapped class's table, for Core statements (``__table__`` is typed as the wider FromClause)."""
    return cast(Table, model.__table__)


def rowcount(result: Result) -> int:
    """The rows an UPDATE or DELETE hit (``execute`` is typed as returning the generic ``Result``)."""
    return cast(CursorResult, result).rowcount


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(engine, expire_on_commit=False)
    # The identity map holds rows weakly: a row loaded early in a transaction (the calendar, a contact
    # just created) and no longer referenced is dropped, and the next ``session.get`` selects it again.
    # Sessions are short (one request, one batch): each keeps what it loaded or added until it closes.
    event.listen(factory, "loaded_as_persistent", _pin)
    event.listen(factory, "pending_to_persistent", _pin)
    return factory


def _pin(session: Session, instance: object) -> None:
    session.info.setdefault("pinned", []).append(instance)


def load_by_id(session: Session, model, ids: Iterable[str | None]) -> dict:
    """Rows of ``model`` with these ids (None and repeats ignored) in one query, by id."""
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {row.id: row for row in session.scalars(select(model).where(model.id.in_(wanted)))}


def lease_free(model: Any, now: Any) -> Any:
    """``model`` rows whose lease is free at ``now``: never taken, or run out (its worker died)."""
    return or_(model.lease_expires_at.is_(None), model.lease_expires_at < now)


def claimable(session: Session, model: Any, *where: Any, order_by: Iterable[Any], now: datetime, limit: int) -> Select:
    """The query for a worker's next batch: ``model`` rows matching ``where`` whose lease is free at ``now``
    (never taken, or run out: its worker died), in ``order_by`` order; on PostgreSQL locked with SKIP LOCKED
    so concurrent workers take different rows. The caller sets the lease on what it gets."""
    query = (
        select(model)
        .where(*where, lease_free(model, now))
        .order_by(*order_by)
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return query


def get_in_location(session: Session, model: type[M], location_id: str, row_id: str | None, label: str) -> M:
    """The ``model`` row ``row_id`` of this location; :class:`NotFound` ("no {label} ...") when it does not
    exist or belongs to another location (which must not be told apart). An id longer than any stored one
    (ids are 32 characters) is not looked up."""
    row = session.get(model, row_id) if row_id and len(row_id) <= 64 else None
    if row is None or getattr(row, "location_id", None) != location_id:
        raise NotFound(f"no {label} {row_id!r}")
    return row


@contextmanager
def read_only_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reads only (it is rolled back at the end): on SQLite it never waits for a writer."""
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        try:
            yield session
        finally:
            session.rollback()


@contextmanager
def read_only_connection(factory: sessionmaker[Session]) -> Iterator[Connection]:
    """``read_only_session`` for Core statements, without a Session: for a hot path's few reads (the API
    key of every request), where a Session's set-up and teardown cost more than the reads themselves."""
    with factory.kw["bind"].connect() as conn:
        conn.execution_options(**{READ_ONLY: True})
        try:
            yield conn
        finally:
            conn.rollback()


@contextmanager
def transaction(factory: sessionmaker[Session], *, read_first: bool = False) -> Iterator[Session]:
    """A session whose work commits together or not at all. ``read_first``: on SQLite it only reads until
    ``take_writer`` (taken at the end if it has changes to flush and nobody took it), so its first reads
    wait for no writer and hold up none."""
    with factory() as session, session.begin():
        if read_first:
            session.connection(execution_options={READ_FIRST: True})
        yield session
        if read_first and (session.new or session.dirty or session.deleted):
            take_writer(session)
