"""Changes made through the pages land in the audit trail with the signed-in user as the actor
(the API records the key; the pages record the person)."""

from __future__ import annotations

from sqlalchemy import select

from automations.store.models import AuditEvent
from tests.test_pages_fixtures import (  # noqa: F401
    app_fixture,
    browser_fixture,
    signed_in_fixture,
    two_worlds_fixture,
)


def test_a_change_made_in_the_pages_names_the_user(signed_in, factory, two_worlds):
    one, _ = two_worlds
    created = signed_in.post("/workflows", {"name": "Audited"})
    assert created.status_code == 302
    with factory() as s:
        rows = s.scalars(select(AuditEvent).where(AuditEvent.location_id == one.location_id)).all()
    assert rows, "creating a workflow in the pages wrote no audit line"
    assert {(r.actor_kind, r.actor_id) for r in rows} == {("user", one.alice_id)}
