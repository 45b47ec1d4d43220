"""Settings from environment variables, read once into a frozen object at start-up.

A bad value refuses to start (:class:`automations.errors.ConfigurationError` naming the variable and the
reason): a typo in ``PUNCTUAL_LEASE_SECONDS`` must not quietly become the default.

Where things live by default: ``$PUNCTUAL_HOME`` (else ``~/.local/share/punctual``) holds the SQLite database
(``punctual.db``), so the CLI finds the same database from any folder. The secret key comes from
``PUNCTUAL_SECRET_KEY``; without it (outside production) a random key is generated on first start and kept in
``secret_key`` beside the SQLite database (or in ``$PUNCTUAL_HOME`` for PostgreSQL), readable by its owner only,
and reused on every later start. There is no built-in key.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from automations.errors import ConfigurationError

ENVIRONMENTS = ("development", "production")
SECRET_KEY_FILE = "secret_key"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("PUNCTUAL_HOME"):
        return Path(env["PUNCTUAL_HOME"]).expanduser()
    return Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "punctual"


def default_database_url(env: Mapping[str, str] | None = None) -> str:
    return f"sqlite:///{default_home(env) / 'punctual.db'}"


def _random_key() -> str:
    return secrets.token_urlsafe(48)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///punctual.db"
    #: ``development`` or ``production`` (production refuses to start without PUNCTUAL_SECRET_KEY).
    env: str = "development"
    #: Seconds between worker ticks; due work is drained fully on every tick.
    tick_seconds: float = 0.5
    lease_seconds: int = 120
    batch_size: int = 500
    from_email: str = "reminders@punctual.invalid"
    #: Base URL the app is reached at (links in messages, provider callbacks).
    public_url: str = "http://127.0.0.1:5000"
    #: Never a built-in value: a fresh random key unless given (``from_env`` keeps one in a file).
    secret_key: str = field(default_factory=_random_key, repr=False)
    #: Reverse proxies in front of the app whose X-Forwarded-* headers are trusted (Werkzeug ProxyFix).
    trusted_proxies: int = 0
    #: Private/loopback destinations webhook and Slack steps may reach anyway: CIDRs and host names.
    outbound_allow: tuple[str, ...] = ()
    #: Email over SMTP (smtp://, smtps://, smtp+starttls://); unset = capture.
    smtp_url: str | None = None
    #: Twilio (SMS, voice); unset = capture.
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str = "https://api.twilio.com"
    #: Zoom OAuth app; unset = the offline meeting sandbox.
    zoom_client_id: str | None = None
    zoom_client_secret: str | None = None
    zoom_webhook_secret: str | None = None
    zoom_api_base: str = "https://api.zoom.us/v2"
    zoom_oauth_base: str = "https://zoom.us"
    #: Messages one enrollment may queue to its contact before it is stopped (a runaway loop backstop).
    max_sends_per_enrollment: int = 20
    #: Finished work (enrollments, their logs and messages; processed domain events) is deleted this
    #: many days after it finished, daily at 03:00 UTC; 0 keeps everything.
    retention_days: int = 90
    #: Rows of each kind deleted per retention transaction (short transactions, short locks).
    retention_batch: int = 1000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        read = _Reader(env)
        database_url = env.get("DATABASE_URL") or default_database_url(env)
        mode = read.choice("PUNCTUAL_ENV", "development", ENVIRONMENTS)
        return cls(
            database_url=database_url,
            env=mode,
            tick_seconds=read.number("PUNCTUAL_TICK_SECONDS", 0.5, float, minimum=0.01),
            lease_seconds=read.number("PUNCTUAL_LEASE_SECONDS", 120, int, minimum=1),
            batch_size=read.number("PUNCTUAL_BATCH_SIZE", 500, int, minimum=1),
            from_email=env.get("PUNCTUAL_FROM_EMAIL") or "reminders@punctual.invalid",
            public_url=read.url("PUNCTUAL_PUBLIC_URL", "http://127.0.0.1:5000"),
            secret_key=_secret_key(env, mode, database_url),
            trusted_proxies=read.number("PUNCTUAL_TRUSTED_PROXIES", 0, int, minimum=0),
            outbound_allow=read.allowlist("PUNCTUAL_OUTBOUND_ALLOW"),
            smtp_url=env.get("SMTP_URL") or None,
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID") or None,
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN") or None,
            twilio_from_number=env.get("TWILIO_FROM_NUMBER") or None,
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID") or None,
            twilio_base_url=read.url("TWILIO_BASE_URL", "https://api.twilio.com"),
            zoom_client_id=env.get("ZOOM_CLIENT_ID") or None,
            zoom_client_secret=env.get("ZOOM_CLIENT_SECRET") or None,
            zoom_webhook_secret=env.get("ZOOM_WEBHOOK_SECRET_TOKEN") or None,
            zoom_api_base=read.url("ZOOM_API_BASE", "https://api.zoom.us/v2"),
            zoom_oauth_base=read.url("ZOOM_OAUTH_BASE", "https://zoom.us"),
            max_sends_per_enrollment=read.number("PUNCTUAL_MAX_SENDS_PER_ENROLLMENT", 20, int, minimum=1),
        )


class _Reader:
    """Typed reads of environment variables; every refusal names the variable and says why."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def _raw(self, name: str) -> str | None:
        value = self.env.get(name)
        return None if value is None or not value.strip() else value.strip()

    def number(self, name: str, default, kind: type, *, minimum: float):
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ConfigurationError(name, f"must be {what}, got {raw!r}") from None
        if not value >= minimum:  # also refuses NaN
            raise ConfigurationError(name, f"must be at least {minimum}, got {raw!r}")
        return value

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() not in allowed:
            raise ConfigurationError(name, f"must be one of {', '.join(allowed)}, got {raw!r}")
        return raw.lower()

    def url(self, name: str, default: str) -> str:
        raw = self._raw(name) or default
        if not raw.startswith(("http://", "https://")):
            raise ConfigurationError(name, f"must be an http:// or https:// URL, got {raw!r}")
        return raw.rstrip("/")

    def allowlist(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name)
        if raw is None:
            return ()
        entries = tuple(e.strip().lower() for e in raw.split(",") if e.strip())
        for entry in entries:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ConfigurationError(name, f"{entry!r} is not a valid CIDR network") from None
            elif not entry.replace("-", "").replace(".", "").replace(":", "").replace("_", "").isalnum():
                raise ConfigurationError(name, f"{entry!r} is neither a CIDR network, an address nor a host name")
        return entries


def _secret_key(env: Mapping[str, str], mode: str, database_url: str) -> str:
    given = (env.get("PUNCTUAL_SECRET_KEY") or "").strip()
    if given:
        return given
    if mode == "production":
        raise ConfigurationError("PUNCTUAL_SECRET_KEY", "is required when PUNCTUAL_ENV=production "
                                 "(a long random value; it encrypts stored tokens and signs unsubscribe links)")
    return load_or_create_key(key_file_for(database_url, env))


def key_file_for(database_url: str, env: Mapping[str, str] | None = None) -> Path:
    """Beside the SQLite database file; in ``$PUNCTUAL_HOME`` for any other database."""
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and database_url[len(prefix):] not in ("", ":memory:"):
        return Path(database_url[len(prefix):]).expanduser().absolute().parent / SECRET_KEY_FILE
    return default_home(env) / SECRET_KEY_FILE


def load_or_create_key(path: Path) -> str:
    """The key stored at ``path``; on first start a new random one, written with owner-only permissions (0600)."""
    try:
        existing = path.read_text().strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    key = _random_key()
    try:
        # O_EXCL: two processes starting at once must not each write their own key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
