"""The ``automations`` console script: serve, worker, db upgrade, demo, recipes, and a few
operator commands (book, outbox, enrollments) so the demo is usable from a terminal."""

from __future__ import annotations

import gc
import json
import logging
import signal
from datetime import datetime

import click
from sqlalchemy import select

import actions  # noqa: F401  (complete the registries before anything runs)
import triggers  # noqa: F401
from automations.booking import appointments
from automations.cli_keys import keys
from automations.clock import SystemClock, ensure_utc
from automations.demo import DEMO_EMAIL, DEMO_NAME, create_demo, demo_password
from automations.documents import recipes
from automations.errors import ConfigurationError, PunctualError
from automations.settings import Settings
from automations.store import migrate
from automations.store.db import make_engine, make_session_factory
from automations.store.models import Contact, Enrollment, EnrollmentLog, Location, Message
from automations.wiring import build_runtime


def _settings() -> Settings:
    """The settings, or a clear refusal naming the bad variable (no traceback)."""
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        raise click.ClickException(f"cannot start: {exc.message}") from exc


def _factory(settings: Settings):
    """Sessions on the configured database, once it has a schema; else say how to make one."""
    if migrate.current_revision(settings.database_url, make_engine) is None:
        raise click.ClickException(f"no schema yet in {settings.database_url}: run `automations db upgrade`")
    return make_session_factory(make_engine(settings.database_url))


def _location(session, name: str | None) -> Location:
    query = select(Location).order_by(Location.created_at)
    loc = session.scalar(query.where(Location.name == name) if name else query)
    if loc is None:
        raise click.ClickException("no location: run `automations demo` first" if not name else f"no location {name!r}")
    return loc


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(verbose: bool) -> None:
    """Punctual: appointment-aware workflow automation."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:  # APScheduler logs two INFO lines per tick; the twilio client eleven per request
        for noisy in ("apscheduler", "twilio.http_client"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema (DATABASE_URL)."""
    settings = _settings()
    migrate.upgrade(make_engine(settings.database_url), revision)
    click.echo(f"database at {revision}: {settings.database_url}")


@main.command()
def demo() -> None:
    """Create the demo location, users, calendar, contacts and published recipe (idempotent)."""
    settings = _settings()
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    factory = make_session_factory(engine)
    with factory() as session, session.begin():
        loc, key = create_demo(session, now=SystemClock().now())
    if key:
        click.echo(f"demo location {loc.name!r} created; API key (shown once): {key}")
    else:
        click.echo(f"demo location {DEMO_NAME!r} already exists")
    click.echo(f"sign in at {settings.public_url}/login as {DEMO_EMAIL} with password {demo_password()}")


def _run_worker(settings: Settings, block: bool):
    from automations.engine import scheduler

    runtime = build_runtime(settings, _factory(settings))
    sched = scheduler.blocking(runtime) if block else scheduler.background(runtime)
    return runtime, sched


@main.command()
def worker() -> None:
    """Run the worker: due waits, outbox delivery, meetings, daily resets. Kill it any time."""
    settings = _settings()
    _, sched = _run_worker(settings, block=True)
    signal.signal(signal.SIGTERM, lambda *_: sched.shutdown(wait=False))
    click.echo(f"worker running (tick {settings.tick_seconds}s) on {settings.database_url}")
    gc.freeze()  # start-up's objects, out of the cyclic collector's full passes (automations.serving)
    sched.start()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-worker", is_flag=True, help="Do not run the embedded worker.")
@click.option("--workers", type=int, default=None, envvar="PUNCTUAL_WEB_WORKERS",
              help="Web processes (default: 2).")
@click.option("--threads", type=int, default=None, envvar="PUNCTUAL_WEB_THREADS",
              help="Threads per web process (default: 2).")
def serve(host: str, port: int, no_worker: bool, workers: int | None, threads: int | None) -> None:
    """Serve the web app and API (gunicorn) with one embedded worker process."""
    from automations import serving

    settings = _settings()
    try:
        serving.check_port_free(host, port)  # before anything changes: a second server is refused at once
    except ConfigurationError as exc:
        raise click.ClickException(f"cannot start: {exc.message}") from exc
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    engine.dispose()  # nothing of it may cross the fork into the web processes
    click.echo(f"Punctual on http://{host}:{port} (database {settings.database_url})")
    serving.serve(settings, host=host, port=port, workers=workers, threads=threads, embedded_worker=not no_worker)


@main.group("recipes")
def recipes_group() -> None:
    """Workflow templates."""


@recipes_group.command("list")
def recipes_list() -> None:
    for recipe in recipes.all_recipes():
        click.echo(f"{recipe.slug}\t{recipe.title}")


@recipes_group.command("import")
@click.argument("slug")
@click.option("--location", "location_name", default=None, help="Location name (default: the first).")
@click.option("--publish", is_flag=True, help="Publish it right away.")
def recipes_import(slug: str, location_name: str | None, publish: bool) -> None:
    settings = _settings()
    with _factory(settings)() as session, session.begin():
        try:
            wf = recipes.import_recipe(session, _location(session, location_name), slug, now=SystemClock().now(),
                                       publish=publish)
        except PunctualError as exc:
            raise click.ClickException(_explain(exc)) from exc
        click.echo(f"imported {slug} as workflow {wf.id} ({wf.status})")


def _explain(exc: PunctualError) -> str:
    lines = [exc.message] + [f"  {path}: {'; '.join(reasons)}" for path, reasons in exc.fields.items()]
    return "\n".join(lines)


@main.command()
@click.option("--contact", "contact_email", required=True, help="Contact email.")
@click.option("--start", "start", required=True, help="ISO 8601 start time with offset, e.g. 2026-12-01T15:00:00-05:00")
@click.option("--calendar", "calendar_slug", default=None, help="Calendar slug (default: the first).")
@click.option("--location", "location_name", default=None)
def book(contact_email: str, start: str, calendar_slug: str | None, location_name: str | None) -> None:
    """Book an appointment (as the API would)."""
    from automations.store.models import Calendar

    settings = _settings()
    try:
        start_at = datetime.fromisoformat(start)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 time: {start}", param_hint="--start") from exc
    if start_at.tzinfo is None:
        raise click.BadParameter("give a UTC offset, e.g. -05:00 or Z", param_hint="--start")
    with _factory(settings)() as session, session.begin():
        loc = _location(session, location_name)
        contact = session.scalar(select(Contact).where(Contact.location_id == loc.id, Contact.email == contact_email))
        if contact is None:
            raise click.ClickException(f"no contact with email {contact_email}")
        query = select(Calendar).where(Calendar.location_id == loc.id).order_by(Calendar.created_at)
        cal = session.scalar(query.where(Calendar.slug == calendar_slug) if calendar_slug else query)
        if cal is None:
            raise click.ClickException("no such calendar")
        try:
            appt = appointments.book(session, location=loc, calendar_id=cal.id, contact_id=contact.id,
                                     start_at=ensure_utc(start_at), now=SystemClock().now())
        except PunctualError as exc:
            raise click.ClickException(_explain(exc)) from exc
        click.echo(f"booked {appt.id} for {contact.name} at {appt.start_at.isoformat()} ({appt.status})")


@main.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def outbox(limit: int, as_json: bool) -> None:
    """Show the newest messages in the outbox (captured when no provider is configured)."""
    settings = _settings()
    with _factory(settings)() as session:
        rows = session.scalars(select(Message).order_by(Message.created_at.desc()).limit(limit)).all()
        for m in rows:
            item = {"id": m.id, "channel": m.channel, "to": m.to_address, "status": m.status, "provider": m.provider,
                    "subject": m.subject, "body": m.body, "reason": m.status_reason,
                    "sent_at": m.sent_at.isoformat() if m.sent_at else None}
            if as_json:
                click.echo(json.dumps(item))
            else:
                click.echo(f"[{m.status}] {m.channel} → {m.to_address} {item['sent_at'] or ''}")
                if m.subject:
                    click.echo(f"  subject: {m.subject}")
                click.echo("  " + (m.body or f"(not rendered yet: {m.status_reason or 'due ' + m.due_at.isoformat()})").replace("\n", "\n  "))


@main.command()
@click.option("--limit", default=10, show_default=True)
def enrollments(limit: int) -> None:
    """Show the newest enrollments with their logs."""
    settings = _settings()
    with _factory(settings)() as session:
        for e in session.scalars(select(Enrollment).order_by(Enrollment.created_at.desc()).limit(limit)):
            wake = f" until {e.wake_at.isoformat()}" if e.state == "waiting" and e.wake_at else ""
            click.echo(f"{e.id} {e.state}{wake} (step {e.step_id})")
            for line in session.scalars(select(EnrollmentLog).where(EnrollmentLog.enrollment_id == e.id).order_by(EnrollmentLog.at, EnrollmentLog.id)):
                click.echo(f"  {line.at.isoformat()} {line.step_id or '-'}: {line.outcome} — {line.reason}")


main.add_command(keys)  # automations keys create|list|rotate|revoke|reissue-demo (automations/cli_keys.py)

if __name__ == "__main__":
    main()
