"""API keys (create shown once, list with prefix and last use, rotate, revoke), rate limits that
answer 429 with Retry-After and hold across processes (they live in the database), and the audit
trail that names the key behind every change."""

from __future__ import annotations

from datetime import timedelta

from automations.store.models import ApiKey, AuditEvent, Contact
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    Api,
    api_fixture,
    app_fixture,
    count,
    error_fields,
    other_api_fixture,
    other_world_fixture,
    spy_runtime_fixture,
    sqlite_only,
)
from web.app import create_app
from web.ratelimit import RateLimits


def test_create_list_rotate_revoke(api, app, factory, world):
    created = api.post("/api-keys", {"name": "zapier"})
    assert created.status_code == 201
    body = created.get_json()
    key, key_id = body["key"], body["id"]
    assert key.startswith("pk_") and body["prefix"] == key[:11] and body["name"] == "zapier"
    with factory() as s:
        assert key not in {row.key_hash for row in s.query(ApiKey)}  # only the hash is stored
    new = Api(app.test_client(), key)
    assert new.get("/contacts").status_code == 200
    listed = {k["id"]: k for k in api.get("/api-keys").get_json()["items"]}
    assert "key" not in listed[key_id] and listed[key_id]["last_used_at"] is not None

    rotated = api.post(f"/api-keys/{key_id}/rotate")
    assert rotated.status_code == 201
    assert new.get("/contacts").status_code == 401  # the old key stops at once
    newer = Api(app.test_client(), rotated.get_json()["key"])
    assert newer.get("/contacts").status_code == 200
    assert api.post(f"/api-keys/{key_id}/rotate").status_code == 409  # revoked: nothing to rotate

    assert api.delete(f"/api-keys/{rotated.get_json()['id']}").status_code == 204
    assert newer.get("/contacts").status_code == 401
    own_id = next(k["id"] for k in api.get("/api-keys").get_json()["items"] if k["revoked_at"] is None)
    assert api.delete(f"/api-keys/{own_id}").status_code == 409  # a key cannot revoke itself


def test_another_locations_keys_are_404(api, other_api, world, other_world):
    theirs = other_api.get("/api-keys").get_json()["items"][0]["id"]
    assert api.delete(f"/api-keys/{theirs}").status_code == 404
    assert api.post(f"/api-keys/{theirs}/rotate").status_code == 404


def test_wrong_keys_from_one_address_are_throttled(factory, clock, spy_runtime, world):
    app = create_app(factory=factory, clock=clock, runtime=spy_runtime,
                     limits=RateLimits(auth_failures=5, per_key=0, per_address=0))
    bad = Api(app.test_client(), "pk_wrong")
    statuses = [bad.get("/contacts").status_code for _ in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    refused = bad.get("/contacts")
    assert int(refused.headers["Retry-After"]) > 0
    # Even the right key waits while the address is locked out; a minute later it works again.
    good = Api(app.test_client(), world.api_key)
    assert good.get("/contacts").status_code == 429
    clock.advance(timedelta(seconds=61))
    assert good.get("/contacts").status_code == 200


def test_calls_per_key_are_limited_and_shared_across_apps(factory, clock, spy_runtime, world):
    limits = RateLimits(auth_failures=0, per_key=3, per_address=0)
    one = Api(create_app(factory=factory, clock=clock, runtime=spy_runtime, limits=limits).test_client(),
              world.api_key)
    two = Api(create_app(factory=factory, clock=clock, runtime=spy_runtime, limits=limits).test_client(),
              world.api_key)  # another process: same database, same counter
    assert [one.get("/contacts").status_code, two.get("/contacts").status_code,
            one.get("/contacts").status_code] == [200, 200, 200]
    limited = two.get("/contacts")
    assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "too_many_requests"
    assert 0 < int(limited.headers["Retry-After"]) <= 60


def test_rate_limit_settings_refuse_bad_values():
    assert RateLimits.from_env({"PUNCTUAL_RATE_LIMIT_PER_KEY": "30"}).per_key == 30
    for bad in ("-1", "lots", "1.5"):
        try:
            RateLimits.from_env({"PUNCTUAL_RATE_LIMIT_PER_KEY": bad})
        except ValueError as exc:
            assert "PUNCTUAL_RATE_LIMIT_PER_KEY" in str(exc)
        else:
            raise AssertionError(bad)


def test_every_change_is_audited_with_its_key(api, factory, world):
    key_id = api.get("/api-keys").get_json()["items"][0]["id"]
    before = count(factory, AuditEvent)
    created = api.post("/contacts", {"first_name": "Ann"}).get_json()
    api.patch(f"/contacts/{created['id']}", {"last_name": "Lee"})
    api.get(f"/contacts/{created['id']}")  # reads are not changes
    api.post("/contacts", {"first_name": ""})  # refused: nothing changed, nothing audited
    assert count(factory, AuditEvent) == before + 2
    events = api.get(f"/audit?entity_id={created['id']}").get_json()["items"]
    assert [e["action"] for e in events] == ["contacts.patch", "contacts.create"]  # newest first
    for event in events:
        assert event["actor_kind"] == "api_key" and event["actor_id"] == key_id
        assert event["entity_type"] == "contacts" and event["summary"]
    assert count(factory, Contact) >= 1
