"""On SQLite one transaction writes at a time. What only reads must not take that turn: a signed-in page,
an API list, the public booking page and its form, and a booked visitor's pages (manage, calendar file,
cancel and reschedule forms) answer while another transaction holds the writer (a booking mid-write),
instead of queueing behind it and holding up the bookings queued after them."""

from __future__ import annotations

from sqlalchemy import text

from automations.booking import booking_links
from automations.store.db import transaction
from tests.background import Background
from tests.factories import book
from tests.test_pages_fixtures import (  # noqa: F401  (fixtures)
    Browser,
    app_fixture,
    browser_fixture,
    signed_in_fixture,
    sqlite_only,
    two_worlds_fixture,
)


def _while_the_writer_is_held(factory, fn, answered: dict) -> None:
    """Run ``fn`` on another thread while this one holds SQLite's writer; it must finish meanwhile."""
    with transaction(factory) as held:
        held.execute(text("UPDATE locations SET name = name"))  # the writer is ours until the block ends
        reader = Background(fn)
        finished = reader.finished_within(20)
        answered_in_time = dict(answered)
    reader.finished_within(20)
    assert finished, f"a read waited for the writer (answered before it: {answered_in_time})"
    reader.reraise()


def test_reads_answer_while_a_booking_holds_the_writer(signed_in: Browser, two_worlds, factory, clock, app):
    world = two_worlds[0]
    start = clock.now().replace(hour=15, minute=0, second=0, microsecond=0).isoformat()
    answers: dict[str, int] = {}
    with factory() as s, s.begin():
        appointment_id = book(s, world, clock.now()).id
    link = f"/book/a/{booking_links.token(app.extensions['punctual'].settings.secret_key, appointment_id)}"
    api = {"Authorization": f"Bearer {world.api_key}"}
    # The key's first use writes its last-use time (then at most once a minute): done before, not measured.
    assert signed_in.client.get("/api/v1/appointments", headers=api).status_code == 200

    def reads() -> None:
        answers["dashboard"] = signed_in.client.get("/").status_code
        answers["calendars page"] = signed_in.client.get("/calendars").status_code
        answers["api list"] = signed_in.client.get("/api/v1/appointments", headers=api).status_code
        answers["booking page"] = signed_in.client.get("/book/test-clinic/consultation").status_code
        answers["booking form"] = signed_in.client.get(
            "/book/test-clinic/consultation/book", query_string={"start": start}).status_code
        answers["manage page"] = signed_in.client.get(link).status_code
        answers["calendar file"] = signed_in.client.get(f"{link}/event.ics").status_code
        answers["cancel page"] = signed_in.client.get(f"{link}/cancel").status_code
        answers["reschedule page"] = signed_in.client.get(f"{link}/reschedule").status_code

    _while_the_writer_is_held(factory, reads, answers)
    assert answers == {"dashboard": 200, "calendars page": 200, "api list": 200, "booking page": 200,
                       "booking form": 200, "manage page": 200, "calendar file": 200, "cancel page": 200,
                       "reschedule page": 200}, answers
