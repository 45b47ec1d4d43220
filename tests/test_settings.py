"""Settings refuse bad values by name and reason; the secret key is never built in: generated once beside the
database (0600) and reused, required in production; the CLI finds one fixed database and says how to make it."""

from __future__ import annotations

import stat

import pytest
from click.testing import CliRunner

from automations.cli import main
from automations.errors import ConfigurationError
from automations.settings import Settings, default_database_url


@pytest.mark.parametrize("name, value, reason", [
    ("PUNCTUAL_LEASE_SECONDS", "two minutes", "must be a whole number"),
    ("PUNCTUAL_LEASE_SECONDS", "0", "must be at least 1"),
    ("PUNCTUAL_TICK_SECONDS", "nan", "must be at least"),
    ("PUNCTUAL_BATCH_SIZE", "1.5", "must be a whole number"),
    ("PUNCTUAL_ENV", "staging", "must be one of development, production"),
    ("PUNCTUAL_PUBLIC_URL", "punctual.example.com", "must be an http:// or https:// URL"),
    ("PUNCTUAL_TRUSTED_PROXIES", "-1", "must be at least 0"),
    ("PUNCTUAL_OUTBOUND_ALLOW", "10.0.0.0/33", "is not a valid CIDR network"),
])
def test_a_bad_value_refuses_to_start_naming_the_variable(tmp_path, name, value, reason):
    env = {"PUNCTUAL_HOME": str(tmp_path), "PUNCTUAL_SECRET_KEY": "k", name: value}
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env(env)
    assert info.value.variable == name and reason in info.value.message and info.value.message.startswith(name)


def test_good_values_are_read(tmp_path):
    settings = Settings.from_env({"PUNCTUAL_HOME": str(tmp_path), "PUNCTUAL_SECRET_KEY": "k",
                                  "PUNCTUAL_LEASE_SECONDS": "30", "PUNCTUAL_TRUSTED_PROXIES": "1",
                                  "PUNCTUAL_OUTBOUND_ALLOW": "10.0.0.0/8, crm.internal"})
    assert (settings.lease_seconds, settings.trusted_proxies) == (30, 1)
    assert settings.outbound_allow == ("10.0.0.0/8", "crm.internal")
    assert settings.database_url == f"sqlite:///{tmp_path / 'punctual.db'}"


def test_without_a_key_one_is_generated_beside_the_database_and_reused(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'app.db'}", "PUNCTUAL_HOME": str(tmp_path / "home")}
    first = Settings.from_env(env).secret_key
    key_file = tmp_path / "data" / "secret_key"
    assert len(first) >= 40 and key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Settings.from_env(env).secret_key == first  # the same key on every start
    assert Settings().secret_key != Settings().secret_key  # nothing built in


def test_production_requires_a_secret_key(tmp_path):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"PUNCTUAL_ENV": "production", "PUNCTUAL_HOME": str(tmp_path)})
    assert info.value.variable == "PUNCTUAL_SECRET_KEY" and "production" in info.value.message
    assert not (tmp_path / "secret_key").exists()
    assert Settings.from_env({"PUNCTUAL_ENV": "production", "PUNCTUAL_SECRET_KEY": "s3cret"}).secret_key == "s3cret"


def test_the_cli_uses_a_fixed_database_and_says_how_to_create_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("PUNCTUAL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["outbox"])
    assert result.exit_code == 1 and "no schema yet" in result.output
    assert "run `automations db upgrade`" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("*.db")) and not (tmp_path / "home" / "punctual.db").exists()
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0
    assert (tmp_path / "home" / "punctual.db").exists()
    assert default_database_url({"PUNCTUAL_HOME": str(tmp_path / "home")}).endswith("/home/punctual.db")
    assert CliRunner().invoke(main, ["outbox"]).exit_code == 0


def test_the_cli_refuses_a_bad_setting_without_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("PUNCTUAL_HOME", str(tmp_path))
    monkeypatch.setenv("PUNCTUAL_BATCH_SIZE", "lots")
    result = CliRunner().invoke(main, ["outbox"])
    assert result.exit_code == 1 and "PUNCTUAL_BATCH_SIZE must be a whole number" in result.output
