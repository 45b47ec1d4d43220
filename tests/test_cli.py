"""The ``automations`` console script, run in-process with click's runner against a real SQLite file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from automations.cli import main
from automations.engine.runtime import Runtime
from automations.store.db import make_engine, make_session_factory
from automations.store.models import Enrollment, Location, Message, Workflow


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PUNCTUAL_DEMO_API_KEY", "pk_cli_demo")
    return url


def invoke(*args: str):
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def test_demo_book_outbox(cli_env):
    first = invoke("demo")
    assert first.exit_code == 0 and "pk_cli_demo" in first.output
    assert "already exists" in invoke("demo").output  # idempotent
    factory = make_session_factory(make_engine(cli_env))
    with factory() as s:
        assert s.scalar(select(Location.name)) == "Punctual Demo Clinic"
        assert s.scalars(select(Workflow.status)).all() == ["published"]

    booked = invoke("book", "--contact", "dana@example.com", "--start", "2030-01-07T15:00:00-05:00")
    assert booked.exit_code == 0, booked.output
    Runtime(factory).tick()
    out = invoke("outbox", "--json")
    items = [json.loads(line) for line in out.output.splitlines()]
    assert {i["channel"] for i in items} == {"email", "sms", "in_app"}
    email = next(i for i in items if i["channel"] == "email")
    assert "Hi Dana" in email["body"] and "sandbox.punctual.invalid/zoom" in email["body"]
    assert "3:00 PM EST" in email["body"]
    enr = invoke("enrollments")
    assert "waiting until 2030-01-06T20:00:00+00:00" in enr.output
    with factory() as s:
        assert s.scalars(select(Enrollment.state)).all() == ["waiting"]
        assert len(s.scalars(select(Message)).all()) == 3


def test_bad_input_is_a_clear_error(cli_env):
    invoke("demo")
    naive = invoke("book", "--contact", "dana@example.com", "--start", "2030-01-07T15:00:00")
    assert naive.exit_code != 0 and "UTC offset" in naive.output
    nobody = invoke("book", "--contact", "nobody@example.com", "--start", "2030-01-07T15:00:00Z")
    assert nobody.exit_code != 0 and "no contact" in nobody.output
    missing = invoke("recipes", "import", "no-such-recipe")
    assert missing.exit_code != 0 and "no recipe" in missing.output


def test_recipes_list_and_import(cli_env):
    invoke("demo")
    listed = invoke("recipes", "list")
    assert "appointment-confirmation-reminders" in listed.output
    imported = invoke("recipes", "import", "appointment-confirmation-reminders")
    assert imported.exit_code == 0 and "(draft)" in imported.output
