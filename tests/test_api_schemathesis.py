"""The schema tells the truth: schemathesis (its own CLI, `--checks all`) generates requests from the
served OpenAPI document — valid and invalid ones — against the real app on a real socket and a real
database: no 5xx, every response matches its documented status, content type, headers and schema,
data the schema calls valid is accepted, invalid data is refused, undocumented methods get 405 with
``Allow``, and a request without the key is refused.

Bounded: a few examples per operation (the coverage phase walks each operation's boundaries once),
so the run takes about half a minute. ``tests/schemathesis.toml`` lists the two allowances, with reasons.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.factories import World
from tests.test_api_fixtures import (  # noqa: F401  (fixtures)
    spy_runtime_fixture,
    sqlite_only,
)
from web.app import create_app
from web.ratelimit import RateLimits

MAX_EXAMPLES = 5
CONFIG = Path(__file__).with_name("schemathesis.toml")
#: The run's wall-clock bound; the test fails rather than hang CI.
TIME_LIMIT_SECONDS = 100


@pytest.fixture(name="served")
def served_fixture(factory, clock, spy_runtime):
    """The app on a real port (one request at a time: SQLite, and a reproducible run). Rate limits off:
    the run sends wrong keys on purpose and a thousand calls in half a minute."""
    app = create_app(factory=factory, clock=clock, runtime=spy_runtime,
                     limits=RateLimits(auth_failures=0, per_key=0, per_address=0))
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


def _st() -> str:
    found = Path(sys.executable).with_name("st")
    return str(found) if found.exists() else (shutil.which("st") or "st")


@pytest.mark.slow
@pytest.mark.timeout(TIME_LIMIT_SECONDS + 20)
def test_api_conforms_to_its_schema(served: str, world: World, tmp_path: Path):
    cmd = [
        _st(), "--config-file", str(CONFIG), "run", f"{served}/api/v1/openapi.json",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--header", f"Authorization: Bearer {world.api_key}",
        "--workers", "1",
        "--seed", "1",
        "--no-color",
        "--generation-database", "none",
        "--report-dir", str(tmp_path),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIME_LIMIT_SECONDS, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
