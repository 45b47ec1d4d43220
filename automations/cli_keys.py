"""``automations keys``: a location's API keys from the terminal — create (shown once), list (prefix and
last use), rotate, revoke, and re-issue the demo key. Every change is in the audit trail as the CLI
and the operating-system user who ran it."""

from __future__ import annotations

import getpass
import os

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from automations.booking import locations
from automations.clock import SystemClock
from automations.errors import PunctualError
from automations.settings import Settings
from automations.store import audit
from automations.store.db import make_engine, make_session_factory, transaction
from automations.store.models import ApiKey, Location


def _actor() -> audit.Actor:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = None
    return audit.Actor("cli", who)


def _location(session: Session, name: str | None) -> Location:
    query = select(Location).order_by(Location.created_at)
    loc = session.scalar(query.where(Location.name == name) if name else query)
    if loc is None:
        raise click.ClickException(f"no location {name!r}" if name else "no location: run `automations demo` first")
    return loc


def _key_row(session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise click.ClickException(f"no API key {key_id!r} (see `automations keys list`)")
    return row


def _run(work):
    """Run ``work(session, now)`` in one transaction; our errors become a clean CLI error."""
    factory = make_session_factory(make_engine(Settings.from_env().database_url))
    try:
        with transaction(factory) as session:
            return work(session, SystemClock().now())
    except PunctualError as exc:
        raise click.ClickException(exc.message or exc.code) from None


def _audit(session: Session, row: ApiKey, action: str, now, summary: str) -> None:
    audit.record(session, location_id=row.location_id, actor=_actor(), action=action, entity_type="api_keys",
                 entity_id=row.id, at=now, summary=summary)


@click.group()
def keys() -> None:
    """API keys: create, list, rotate, revoke (keys are shown once and stored hashed)."""


@keys.command("create")
@click.option("--location", "location_name", default=None, help="Location name (default: the first one).")
@click.option("--name", default="default", show_default=True, help="A label for the key.")
def create(location_name: str | None, name: str) -> None:
    """Create a key and print it (this once)."""

    def work(session: Session, now):
        row, key = locations.issue(session, _location(session, location_name), now=now, name=name)
        _audit(session, row, "api_keys.create", now, f"created API key {row.prefix}… ({name})")
        return row, key

    row, key = _run(work)
    click.echo(f"{row.id}  {key}")
    click.echo("Shown once: store it now.", err=True)


@keys.command("list")
@click.option("--location", "location_name", default=None, help="Location name (default: the first one).")
def list_keys(location_name: str | None) -> None:
    """Keys with their prefix, last use and state (never the keys themselves)."""

    def work(session: Session, _now):
        return [(r.id, r.name, r.prefix, r.created_at, r.last_used_at, r.revoked_at)
                for r in locations.keys(session, _location(session, location_name).id)]

    for key_id, name, prefix, created, used, revoked in _run(work):
        state = f"revoked {revoked:%Y-%m-%d %H:%M}" if revoked else "active"
        last = f"{used:%Y-%m-%d %H:%M}" if used else "never used"
        click.echo(f"{key_id}  {(prefix or '?') + '…':<13} {name:<20} created {created:%Y-%m-%d}  {last:<16}  {state}")


@keys.command("rotate")
@click.argument("key_id")
def rotate(key_id: str) -> None:
    """Replace a key: print the new one (once); the old one stops working now."""

    def work(session: Session, now):
        old = _key_row(session, key_id)
        row, key = locations.rotate(session, old, now)
        _audit(session, old, "api_keys.rotate", now, f"rotated API key {old.prefix}… to {row.prefix}…")
        return row, key

    row, key = _run(work)
    click.echo(f"{row.id}  {key}")
    click.echo("Shown once: store it now. The old key no longer works.", err=True)


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke a key (it stops working now)."""

    def work(session: Session, now):
        row = _key_row(session, key_id)
        changed = locations.revoke(row, now)
        if changed:
            _audit(session, row, "api_keys.revoke", now, f"revoked API key {row.prefix}…")
        return changed

    click.echo("revoked" if _run(work) else "already revoked")


@keys.command("reissue-demo")
@click.option("--location", "location_name", default=None, help="Location name (default: the first one).")
def reissue_demo(location_name: str | None) -> None:
    """Revoke the location's keys and issue one new key (PUNCTUAL_DEMO_API_KEY if set), printed once."""

    def work(session: Session, now):
        loc = _location(session, location_name)
        row, key = locations.reissue(session, loc, now=now, key=os.environ.get("PUNCTUAL_DEMO_API_KEY") or None)
        _audit(session, row, "api_keys.reissue", now, f"re-issued the location's key as {row.prefix}…")
        return key

    click.echo(_run(work))
