"""Workflows through the API: validation errors by JSON path, hostile templates, unknown merge fields
at publish, publish/unpublish, export → import round trip, and deleting never-published drafts."""

from __future__ import annotations

import copy

from automations.store.models import Workflow, WorkflowVersion
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    counts,
    error_fields,
    spy_runtime_fixture,
    sqlite_only,
)


def _create(api, document=None):
    response = api.post("/workflows", document or confirmation_doc())
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_create_get_and_list(api, world):
    wf = _create(api)
    assert wf["status"] == "draft" and wf["current_version"] is None and wf["versions"] == []
    assert wf["name"] == "Confirmations"
    # Stored normalized: defaults filled in.
    assert wf["draft"]["settings"]["reschedule"] == "restart"
    assert wf["draft"]["steps"][0]["subject"] == "See you soon, {{contact.first_name}}"
    assert api.get(f"/workflows/{wf['id']}").get_json() == wf
    listed = api.get("/workflows").get_json()["items"]
    assert [w["id"] for w in listed] == [wf["id"]] and "draft" not in listed[0]


def test_invalid_document_is_422_with_paths_and_nothing_saved(api, world, factory):
    before = counts(factory, Workflow)
    document = {
        "version": 1,
        "name": "Broken",
        "triggers": [{"type": "appointment_status", "filters": {"statuses": ["booked"]}}],
        "steps": [
            {"id": "e1", "type": "send_email", "body": "no subject"},
            {"id": "w1", "type": "wait_time_delay", "amount": "ten", "unit": "fortnights"},
            {"id": "x", "type": "teleport"},
        ],
    }
    response = api.post("/workflows", document)
    assert response.status_code == 422
    fields = error_fields(response)
    assert "steps[0].subject" in fields
    assert "steps[1].amount" in fields and "steps[1].unit" in fields
    assert "steps[2].type" in fields and "teleport" in fields["steps[2].type"][0]
    assert "triggers[0].filters.statuses[0]" in fields
    assert counts(factory, Workflow) == before


def test_misspelt_document_field_is_named(api, world):
    document = confirmation_doc()
    document["stpes"] = document.pop("steps")
    response = api.post("/workflows", document)
    assert response.status_code == 422
    assert set(error_fields(response)) == {"stpes", "steps"}
    document = confirmation_doc()
    document["steps"][0]["subjet"] = "typo"
    assert "steps[0].subjet" in error_fields(api.post("/workflows", document))


def test_hostile_template_is_rejected_on_save_with_its_path(api, world, factory):
    before = counts(factory, Workflow)
    document = confirmation_doc()
    document["steps"][0]["body"] = "Hi {{ ''.__class__ }}"
    response = api.post("/workflows", document)
    assert response.status_code == 422
    assert "steps[0].body" in error_fields(response)
    assert counts(factory, Workflow) == before
    # Replacing a good draft with a hostile one is refused as well; the draft is unchanged.
    wf = _create(api)
    document["steps"][0]["body"] = "<< ''.__class__.__mro__ >>"
    response = api.put(f"/workflows/{wf['id']}", document)
    assert response.status_code == 422 and "steps[0].body" in error_fields(response)
    assert api.get(f"/workflows/{wf['id']}").get_json()["draft"] == wf["draft"]


def test_unknown_merge_field_is_reported_at_publish(api, world, factory):
    document = confirmation_doc()
    document["steps"][0]["subject"] = "Hi {{contact.frist_name}}"
    wf = _create(api, document)  # a draft may hold it...
    response = api.post(f"/workflows/{wf['id']}/publish")
    assert response.status_code == 422  # ...but it cannot go live
    fields = error_fields(response)
    assert list(fields) == ["steps[0].subject"]
    assert "contact.frist_name" in fields["steps[0].subject"][0]
    after = api.get(f"/workflows/{wf['id']}").get_json()
    assert after["status"] == "draft" and after["versions"] == []
    assert counts(factory, WorkflowVersion) == {"WorkflowVersion": 0}


def test_publish_unpublish_and_versions(api, world):
    wf = _create(api)
    published = api.post(f"/workflows/{wf['id']}/publish")
    assert published.status_code == 200
    body = published.get_json()
    assert body["status"] == "published" and body["current_version"] == 1
    edited = copy.deepcopy(confirmation_doc())
    edited["steps"][0]["subject"] = "Version two"
    assert api.put(f"/workflows/{wf['id']}", edited).status_code == 200
    # Editing the draft does not touch the live version.
    assert api.get(f"/workflows/{wf['id']}").get_json()["current_version"] == 1
    again = api.post(f"/workflows/{wf['id']}/publish").get_json()
    assert again["current_version"] == 2 and [v["number"] for v in again["versions"]] == [1, 2]
    off = api.post(f"/workflows/{wf['id']}/unpublish")
    assert off.status_code == 200 and off.get_json()["status"] == "draft"
    twice = api.post(f"/workflows/{wf['id']}/unpublish")
    assert twice.status_code == 409 and twice.get_json()["error"]["code"] == "conflict"
    assert [w["id"] for w in api.get("/workflows?status=draft").get_json()["items"]] == [wf["id"]]


def test_publish_checks_ids_against_the_location(api, world):
    document = confirmation_doc()
    document["triggers"][0]["filters"]["calendars"] = ["not-a-calendar"]
    wf = _create(api, document)
    response = api.post(f"/workflows/{wf['id']}/publish")
    assert response.status_code == 422
    assert "triggers[0].filters.calendars[0]" in error_fields(response)


def test_export_import_round_trip(api, world):
    wf = _create(api)
    api.post(f"/workflows/{wf['id']}/publish")
    draft_doc = copy.deepcopy(confirmation_doc())
    draft_doc["steps"][0]["subject"] = "Draft only"
    api.put(f"/workflows/{wf['id']}", draft_doc)

    exported = api.get(f"/workflows/{wf['id']}/export?version=1")
    assert exported.status_code == 200
    assert exported.mimetype == "application/json"
    disposition = exported.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and disposition.endswith('-v1.json"')
    document = exported.get_json()
    assert document["steps"][0]["subject"] == "See you soon, {{contact.first_name}}"  # version 1, not the draft
    draft = api.get(f"/workflows/{wf['id']}/export").get_json()
    assert draft["steps"][0]["subject"] == "Draft only"

    imported = api.post("/workflows/import", document)
    assert imported.status_code == 201
    new = imported.get_json()
    assert new["id"] != wf["id"] and new["status"] == "draft"
    assert api.get(f"/workflows/{new['id']}/export").get_json() == document
    assert api.post(f"/workflows/{new['id']}/publish").status_code == 200


def test_import_accepts_a_recipe_file(api, world):
    recipe_file = {"slug": "mine", "title": "Mine", "workflow": confirmation_doc("From a file")}
    response = api.post("/workflows/import", recipe_file)
    assert response.status_code == 201 and response.get_json()["name"] == "From a file"
    bad = api.post("/workflows/import", {"workflow": confirmation_doc(), "slgu": "typo"})
    assert bad.status_code == 422 and "slgu" in error_fields(bad)


def test_export_errors(api, world):
    wf = _create(api)
    missing = api.get(f"/workflows/{wf['id']}/export?version=3")
    assert missing.status_code == 404
    for bad in ("abc", "0", "-1", "99999999999999"):
        response = api.get(f"/workflows/{wf['id']}/export?version={bad}")
        assert response.status_code == 422 and "version" in error_fields(response), bad


def test_delete_only_never_published_drafts(api, world, factory):
    draft = _create(api)
    assert api.delete(f"/workflows/{draft['id']}").status_code == 204
    assert api.get(f"/workflows/{draft['id']}").status_code == 404
    live = _create(api)
    api.post(f"/workflows/{live['id']}/publish")
    refused = api.delete(f"/workflows/{live['id']}")
    assert refused.status_code == 409
    api.post(f"/workflows/{live['id']}/unpublish")
    assert api.delete(f"/workflows/{live['id']}").status_code == 409  # it has history
    assert counts(factory, Workflow, WorkflowVersion) == {"Workflow": 1, "WorkflowVersion": 1}
