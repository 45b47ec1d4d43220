"""Shared fixtures: a migrated database (SQLite always; PostgreSQL when reachable), a frozen
clock, a runtime with capture providers, and a small world of location, users, calendar, contacts.

``db`` runs each test on both backends; PostgreSQL tests skip when it is unreachable, unless
``PUNCTUAL_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

import actions  # noqa: F401  (registries complete)
import triggers  # noqa: F401
from automations.clock import FrozenClock
from automations.engine.runtime import Runtime
from automations.settings import Settings
from automations.store import migrate
from automations.store.db import Base, make_engine, make_session_factory
from providers.bag import Providers
from providers.destinations import Allowlist
from providers.http_actions import SlackWebhookSender, WebhookSender
from tests.factories import World, make_world

# Settings.from_env() keeps a generated secret key (and the CLI its default database) in $PUNCTUAL_HOME:
# never the developer's own during a test run.
os.environ.setdefault("PUNCTUAL_HOME", tempfile.mkdtemp(prefix="punctual-test-home-"))

PG_URL = os.environ.get("PUNCTUAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
#: One deployment secret for the test runtime, its providers and the app (links signed by one are read by another).
TEST_SECRET_KEY = "test-secret-key-not-for-production"
START = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # a Monday


def _postgres_available() -> bool:
    try:
        eng = make_engine(PG_URL, pool_size=1)
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()
    return str(path)


@pytest.fixture(scope="session")
def pg_schema_url():
    if not _postgres_available():
        if os.environ.get("PUNCTUAL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unreachable at {PG_URL}")
        pytest.skip("PostgreSQL not reachable")
    schema = f"punctual_test_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


def _sqlite_url(tmp_path, template: str) -> str:
    path = tmp_path / "punctual.db"
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path, sqlite_template):
    if request.param == "sqlite":
        yield _sqlite_url(tmp_path, sqlite_template)
        return
    url = request.getfixturevalue("pg_schema_url")
    engine = make_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def sqlite_url(tmp_path, sqlite_template) -> str:
    return _sqlite_url(tmp_path, sqlite_template)


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def factory(engine):
    return make_session_factory(engine)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def providers() -> Providers:
    # The tests' local receivers listen on loopback: the operator allowlist lets webhooks reach them.
    return local_providers()


#: What tests put in PUNCTUAL_OUTBOUND_ALLOW to reach their local fakes.
LOCAL_ALLOW = ("127.0.0.0/8",)


def local_providers(**overrides) -> Providers:
    allow = Allowlist.parse(LOCAL_ALLOW)
    return Providers(**{"webhook": WebhookSender(allow=allow), "slack": SlackWebhookSender(allow=allow),
                        "secret_key": TEST_SECRET_KEY, **overrides})


@pytest.fixture
def runtime(factory, clock, providers) -> Runtime:
    return Runtime(factory, clock=clock, providers=providers, settings=Settings(batch_size=100, secret_key=TEST_SECRET_KEY),
                   owner="test-worker")


@pytest.fixture
def world(factory, clock) -> World:
    with factory() as session, session.begin():
        return make_world(session, clock.now())
