"""Schemathesis against the operator API's own OpenAPI document (bounded examples).

Every operation of ``/api/v1/openapi.json`` gets a few generated requests (valid and
invalid) with an admin's token; none may answer 5xx. Seeded through hypothesis's
``derandomize``, so a run is repeatable.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import api_world
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from guardian_lib.api.app import PREFIX, ApiConfig, create_app
from guardian_lib.api.users import UserStore
from guardian_lib.operate.state import StateStore

MAX_EXAMPLES = 8


def _api() -> tuple[object, str]:
    """The API of a tiny site (warehouse, operate state, an admin), built once at import:
    schemathesis needs the schema when tests are collected."""
    root = Path(tempfile.mkdtemp(prefix="guardian-schemathesis-"))
    api_world.make_warehouse(root / "run")
    StateStore(root / "state").close()
    users = UserStore(root / "users.json")
    users.add("boss", "admin")
    token = users.issue_token("boss")[0]
    cfg = ApiConfig(run=root / "run", users=root / "users.json", state=root / "state",
                    webhook_every_s=0, execute_per_minute=10_000)  # fmt: skip
    return create_app(cfg, users), token


APP, TOKEN = _api()
schema = schemathesis.openapi.from_asgi(f"{PREFIX}/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_no_operation_answers_a_server_error(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"},
                           checks=[not_a_server_error])  # fmt: skip
