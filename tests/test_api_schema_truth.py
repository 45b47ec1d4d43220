"""What the schemathesis run found, pinned as plain tests: an empty cursor is the first page; the
import route's OPTIONS and undocumented methods name only its own methods; a recipe import needs no
body; the workflow document's booleans are JSON booleans; documented rules match enforced ones."""

from __future__ import annotations

from automations.store.models import Contact, Workflow
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    count,
    error_fields,
    spy_runtime_fixture,
    sqlite_only,
)

LISTS = ["/contacts", "/calendars", "/appointments", "/workflows", "/enrollments", "/messages", "/notifications",
         "/users"]


def test_an_empty_cursor_is_the_first_page(api, world):
    for path in LISTS:
        first = api.get(f"{path}?limit=1")
        empty = api.get(f"{path}?limit=1&cursor=")
        assert empty.status_code == 200, (path, empty.get_json())
        assert empty.get_json() == first.get_json(), path
    assert "cursor" in error_fields(api.get("/contacts?cursor=nonsense"))


def test_import_route_names_only_its_own_methods(api, world):
    options = api.call("OPTIONS", "/workflows/import")
    assert options.status_code == 200
    assert set(options.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    for method in ("GET", "PUT", "DELETE"):
        response = api.call(method, "/workflows/import")
        assert response.status_code == 405, method
        assert "POST" in response.headers["Allow"]


def test_recipe_import_is_documented_without_a_required_body(app, api, world):
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    op = document["paths"]["/api/v1/recipes/{slug}/import"]["post"]
    assert op["requestBody"]["required"] is False
    slug = api.get("/recipes").get_json()["items"][0]["slug"]
    assert api.post(f"/recipes/{slug}/import").status_code == 201


def test_workflow_booleans_are_json_booleans(api, factory, world):
    before = count(factory, Workflow)
    for bad in (0, 1, "yes", "on", "true"):
        doc = confirmation_doc()
        doc["settings"] = {"stop_on_response": bad}
        response = api.post("/workflows", doc)
        assert response.status_code == 422, bad
        assert "settings.stop_on_response" in error_fields(response)
    assert count(factory, Workflow) == before


def test_contact_rules_are_in_the_document(app, api, factory, world):
    schemas = app.test_client().get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    create = schemas["ContactCreate"]
    assert {tuple(alt["required"]) for alt in create["anyOf"]} == {("first_name",), ("last_name",), ("email",),
                                                                   ("phone",)}
    assert "pattern" in create["properties"]["timezone"]
    before = count(factory, Contact)
    assert api.post("/contacts", {"tags": ["x"]}).status_code == 422
    assert "timezone" in error_fields(api.post("/contacts", {"first_name": "A", "timezone": "Mars/Base"}))
    assert count(factory, Contact) == before
