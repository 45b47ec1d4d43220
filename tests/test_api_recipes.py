"""Recipes through the API: list the shipped templates, import one as a draft or published, and a
published recipe reacts to a booking made through the API."""

from __future__ import annotations

from datetime import timedelta

from automations.store.models import Workflow
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    counts,
    error_fields,
    spy_runtime_fixture,
    sqlite_only,
)

SLUG = "appointment-confirmation-reminders"


def test_list_recipes(api, world):
    response = api.get("/recipes")
    assert response.status_code == 200
    recipes = {r["slug"]: r for r in response.get_json()["items"]}
    assert SLUG in recipes
    assert recipes[SLUG]["title"] and recipes[SLUG]["steps"] >= 5


def test_import_recipe_as_draft(api, world):
    response = api.post(f"/recipes/{SLUG}/import")
    assert response.status_code == 201
    wf = response.get_json()
    assert wf["status"] == "draft" and wf["current_version"] is None
    assert wf["draft"]["steps"][0]["id"] == "confirm-email"
    assert [w["id"] for w in api.get("/workflows").get_json()["items"]] == [wf["id"]]


def test_import_recipe_published_enrolls_on_booking(api, world, clock, runtime):
    response = api.post(f"/recipes/{SLUG}/import", {"publish": True})
    assert response.status_code == 201
    wf = response.get_json()
    assert wf["status"] == "published" and wf["current_version"] == 1
    booked = api.post("/appointments", {"calendar_id": world.calendar_id, "contact_id": world.eli_id,
                                        "start_time": (clock.now() + timedelta(days=2)).isoformat()})
    assert booked.status_code == 201
    runtime.tick()
    enrollment = api.get(f"/enrollments?workflow_id={wf['id']}").get_json()["items"]
    assert len(enrollment) == 1 and enrollment[0]["contact_id"] == world.eli_id
    email = api.get("/messages?channel=email").get_json()["items"][0]
    assert email["status"] == "sent" and "Hi Eli" in email["body"]
    # The host got the in-app heads-up from the recipe's internal notification.
    notes = api.get(f"/notifications?user_id={booked.get_json()['assigned_user_id']}").get_json()["items"]
    assert notes and "Eli" in notes[0]["title"]


def test_recipe_import_errors(api, world, factory):
    assert api.post("/recipes/no-such-recipe/import").status_code == 404
    bad = api.post(f"/recipes/{SLUG}/import", {"publish": "yes"})
    assert bad.status_code == 422 and "publish" in error_fields(bad)
    typo = api.post(f"/recipes/{SLUG}/import", {"pubish": True})
    assert typo.status_code == 422 and "pubish" in error_fields(typo)
    assert counts(factory, Workflow) == {"Workflow": 0}
