"""``automations keys``: create (shown once), list (prefix, last use), rotate, revoke and re-issue the
demo key, from the terminal against a real SQLite file; each change lands in the audit trail; the keys
it prints open the API."""

from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import func, select

from automations.cli import main
from automations.store.db import make_engine, make_session_factory
from automations.store.models import AuditEvent
from tests.test_api_fixtures import Api
from web.app import create_app


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_from_the_terminal(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PUNCTUAL_DEMO_API_KEY", "pk_cli_demo")
    _run("db", "upgrade")
    _run("demo")
    factory = make_session_factory(make_engine(url))
    client = create_app(factory=factory).test_client()

    key_id, key = re.search(r"^(\w+)  (pk_\S+)$", _run("keys", "create", "--name", "ci"), re.M).groups()
    assert Api(client, key).get("/contacts").status_code == 200
    listing = _run("keys", "list")
    assert key[:11] + "…" in listing and key not in listing and "ci" in listing

    new_id, new_key = re.search(r"^(\w+)  (pk_\S+)$", _run("keys", "rotate", key_id), re.M).groups()
    assert Api(client, key).get("/contacts").status_code == 401
    assert Api(client, new_key).get("/contacts").status_code == 200
    assert _run("keys", "revoke", new_id).strip() == "revoked"
    assert Api(client, new_key).get("/contacts").status_code == 401

    # The demo key, re-issued: every other key revoked, PUNCTUAL_DEMO_API_KEY works again.
    assert _run("keys", "reissue-demo").strip() == "pk_cli_demo"
    assert Api(client, "pk_cli_demo").get("/contacts").status_code == 200

    with factory() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.actor_kind == "cli")).all()
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == len(actions)
    assert actions == ["api_keys.create", "api_keys.rotate", "api_keys.revoke", "api_keys.reissue"]

    result = CliRunner().invoke(main, ["keys", "rotate", "nope"])
    assert result.exit_code != 0 and "no API key" in result.output
