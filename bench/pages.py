"""Page speed: p95 server time of the workflows list, the builder, and a workflow's enrollment history
with 10,000 enrollments (first page, a deep page, and filtered by status and contact), through the real
app (``create_app``) with a signed-in Flask test client. Prints one JSON object.

    .venv/bin/python bench/pages.py                  # 10,000 enrollments, 60 requests per page
    .venv/bin/python bench/pages.py --enrollments 50000 --repeats 100

Targets (SQLite, 2-core machine): each p95 under 150 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from automations.booking import accounts  # noqa: E402
from automations.clock import FrozenClock  # noqa: E402
from automations.store.db import make_engine, make_session_factory  # noqa: E402
from automations.store.models import Enrollment, EnrollmentLog, User, new_id  # noqa: E402
from bench.common import (  # noqa: E402
    make_bench_world,
    percentile,
    publish_document,
    reminder_document,
    setup_logging,
    temp_database,
)
from web.app import create_app  # noqa: E402

log = logging.getLogger("bench")
NOW = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
PASSWORD = "bench password 1"


def seed(factory, n: int, workflows_count: int) -> tuple[str, str]:
    with factory() as s, s.begin():
        world = make_bench_world(s, NOW, calendars=1, per_slot=1, contact_count=1000)
        user = s.get(User, world.user_ids[0])
        accounts.set_password(user, PASSWORD)
        email = user.email
        ids = [publish_document(s, world.location_id, {**reminder_document(), "name": f"Reminders {i}"}, NOW)
               for i in range(workflows_count)]
        wf_id, version_id = ids[0]
    states = ["waiting", "completed", "exited", "failed", "active"]
    rows, logs = [], []
    for i in range(n):
        eid = new_id()
        state = states[i % len(states)]
        created = NOW - timedelta(minutes=n - i)
        rows.append({"id": eid, "location_id": world.location_id, "workflow_id": wf_id, "version_id": version_id,
                     "appointment_id": None, "contact_id": world.contact_ids[i % len(world.contact_ids)],
                     "event_id": f"bench-{i}", "trigger_status": "confirmed", "state": state,
                     "live": None, "step_id": "wait",
                     "step_seq": 1, "wake_at": NOW + timedelta(hours=i % 48) if state == "waiting" else None,
                     "wait_kind": "appointment_time" if state == "waiting" else None, "skip_outbound": False,
                     "rescheduled": False, "exit_reason": None, "created_at": created, "updated_at": created,
                     "finished_at": None})
        logs.append({"id": new_id(), "enrollment_id": eid, "step_seq": 0, "step_id": None, "step_type": None,
                     "outcome": "enrolled", "reason": "bench", "detail": {}, "at": created})
    with factory() as s, s.begin():
        for start in range(0, n, 2000):
            s.execute(insert(Enrollment), rows[start:start + 2000])
            s.execute(insert(EnrollmentLog), logs[start:start + 2000])
    return wf_id, email


def timed(client, url: str, repeats: int) -> list[float]:
    client.get(url)  # warm: template compile, first-query plans
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        response = client.get(url)
        out.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--enrollments", type=int, default=10_000)
    parser.add_argument("--workflows", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    setup_logging(args.verbose)
    with temp_database(args.db) as url:
        engine = make_engine(url)
        factory = make_session_factory(engine)
        wf_id, email = seed(factory, args.enrollments, args.workflows)
        log.info("seeded %d enrollments", args.enrollments)
        app = create_app(factory=factory, clock=FrozenClock(NOW))
        app.config["WTF_CSRF_ENABLED"] = False  # the bench signs in with a plain post
        client = app.test_client()
        response = client.post("/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 302, response.status_code
        results = {
            "list": timed(client, "/workflows", args.repeats),
            "builder": timed(client, f"/workflows/{wf_id}", args.repeats),
            "history": timed(client, f"/workflows/{wf_id}/enrollments", args.repeats),
            "history_deep": timed(client, f"/workflows/{wf_id}/enrollments?page=150", args.repeats),
            "history_filtered": timed(client, f"/workflows/{wf_id}/enrollments?status=waiting&contact=bench", args.repeats),
        }
        engine.dispose()
    out = {"db": args.db, "enrollments": args.enrollments, "workflows": args.workflows, "repeats": args.repeats}
    for name, values in results.items():
        out[f"{name}_p95_ms"] = round(percentile(values, 95), 1)
        out[f"{name}_p50_ms"] = round(percentile(values, 50), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
