"""The OpenAPI document covers every registered ``/api/v1`` route, every ``$ref`` resolves, request
bodies come from the marshmallow schemas that validate them, response bodies are exactly the
fields of their response schemas (all required in the document), and the step discriminator maps
every step type."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.factories import book, publish
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    api_fixture,
    app_fixture,
    confirmation_doc,
    shape_fields,
    spy_runtime_fixture,
    sqlite_only,
)


def _doc(app):
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def test_every_api_rule_is_documented(app, world):
    document = _doc(app)
    assert document["openapi"].startswith("3.1")
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/v1/")]
    assert len(rules) >= 20
    for rule in rules:
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        assert path in document["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            op = document["paths"][path].get(method.lower())
            assert op is not None, (method, path)
            assert op["summary"] and op["responses"]
            for name in re.findall(r"{(\w+)}", path):
                assert {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} in op["parameters"]


def test_all_refs_resolve(app, world):
    document = _doc(app)
    schemas = document["components"]["schemas"]

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)


def test_bodies_and_queries_come_from_the_schemas(app, world):
    document = _doc(app)
    schemas = document["components"]["schemas"]
    book_op = document["paths"]["/api/v1/appointments"]["post"]
    ref = book_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    booking = schemas[ref.rsplit("/", 1)[1]]
    assert booking["additionalProperties"] is False
    assert set(booking["required"]) == {"calendar_id", "start_time"}
    assert booking["properties"]["start_time"]["format"] == "date-time"
    assert "confirmed" in booking["properties"]["status"]["enum"]
    assert {"201", "401", "409", "422"} <= set(book_op["responses"])

    wf_doc = schemas["WorkflowDocument"]
    step_refs = {s["$ref"].rsplit("/", 1)[1] for s in wf_doc["properties"]["steps"]["items"]["oneOf"]}
    assert {"Step_send_email", "Step_wait_time_delay", "Step_if_else"} <= step_refs
    assert {"subject", "body"} <= set(schemas["Step_send_email"]["required"])
    assert document["paths"]["/api/v1/workflows"]["post"]["requestBody"]["content"]["application/json"][
        "schema"] == {"$ref": "#/components/schemas/WorkflowDocument"}
    mapping = wf_doc["properties"]["steps"]["items"]["discriminator"]["mapping"]
    assert mapping["send_email"] == "#/components/schemas/Step_send_email"
    assert set(mapping) == {r.removeprefix("Step_") for r in step_refs}
    assert schemas["Step_goto"]["properties"]["type"] == {"type": "string", "enum": ["goto"]}
    assert set(schemas["Contact"]["required"]) == shape_fields("Contact")

    messages = document["paths"]["/api/v1/messages"]["get"]
    names = {p["name"] for p in messages["parameters"]}
    assert names == {"limit", "cursor", "status", "channel", "appointment_id", "contact_id"}
    page = schemas[messages["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
    assert page["required"] == ["items", "next_cursor"]
    assert page["properties"]["items"]["items"] == {"$ref": "#/components/schemas/Message"}
    assert document["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    assert "Content-Disposition" in document["paths"]["/api/v1/workflows/{workflow_id}/export"]["get"][
        "responses"]["200"]["headers"]


def test_documented_response_fields_match_serializers(api, world, factory, clock, runtime):
    with factory() as s, s.begin():
        wf = publish(s, world, confirmation_doc(), clock.now())
        appt = book(s, world, clock.now(), start=clock.now() + timedelta(days=2))
        wf_id, appt_id = wf.id, appt.id
    runtime.tick()
    enrollment = api.get("/enrollments").get_json()["items"][0]
    samples = {
        "Contact": api.get(f"/contacts/{world.dana_id}").get_json(),
        "Calendar": api.get("/calendars").get_json()["items"][0],
        "CalendarDetail": api.get(f"/calendars/{world.calendar_id}").get_json(),
        "Appointment": api.get(f"/appointments/{appt_id}").get_json(),
        "Workflow": api.get("/workflows").get_json()["items"][0],
        "WorkflowDetail": api.get(f"/workflows/{wf_id}").get_json(),
        "Recipe": api.get("/recipes").get_json()["items"][0],
        "Enrollment": enrollment,
        "EnrollmentDetail": api.get(f"/enrollments/{enrollment['id']}").get_json(),
        "Message": api.get("/messages").get_json()["items"][0],
        "Notification": api.get("/notifications").get_json()["items"][0],
    }
    for name, sample in samples.items():
        assert set(sample) == set(shape_fields(name)), name
    assert set(samples["Appointment"]["meeting"]) == set(shape_fields("MeetingInfo"))
    assert set(samples["CalendarDetail"]["members"][0]) == set(shape_fields("CalendarMember"))
    assert set(samples["EnrollmentDetail"]["log"][0]) == set(shape_fields("EnrollmentLogLine"))
