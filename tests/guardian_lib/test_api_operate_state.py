"""A mistyped ``guardian api --state`` is said at start and on /health (user safety).

The quick start runs ``guardian operate`` and ``guardian api`` at the same time, so the API
cannot refuse a state folder operate has not created yet; it waits for it and says so:
a warning at start naming the path, and ``operate_state`` on /health.
"""

from __future__ import annotations

import shutil

from api_world import api_client

from guardian_lib.api.app import PREFIX
from guardian_lib.operate.state import StateStore


def test_health_says_waiting_until_operate_creates_its_state(tmp_path):
    world = api_client(tmp_path, [("v", "viewer", [])])
    c = world["client"]
    assert c.get(PREFIX + "/health").json()["operate_state"] == "ready"
    shutil.rmtree(world["state"])  # as with a --state operate never used
    assert c.get(PREFIX + "/health").json()["operate_state"] == "waiting"
    listed = c.get(
        PREFIX + "/decisions", headers={"Authorization": f"Bearer {world['tokens']['v']}"}
    )
    assert listed.status_code == 503 and listed.json()["type"].endswith("/no-operate-state")
    StateStore(world["state"]).close()  # operate starts there
    assert c.get(PREFIX + "/health").json()["operate_state"] == "ready"


def test_guardian_api_warns_at_start_about_a_state_without_operate(tmp_path, monkeypatch):
    import typer
    import uvicorn
    import yaml
    from typer.testing import CliRunner

    from guardian_lib.api.cli import register
    from guardian_lib.api.users import UserStore

    (tmp_path / "olts.yaml").write_text(
        yaml.safe_dump({"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "n"}]})
    )
    site = {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None}
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    UserStore(tmp_path / "u.json").add("noc", "viewer")
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    app = typer.Typer()
    register(app)

    def start(state):
        return CliRunner().invoke(app, ["api", "--users", str(tmp_path / "u.json"), "--site",
                                        str(tmp_path / "site.yaml"), "--state", str(state)])  # fmt: skip

    out = start(tmp_path / "nope")
    assert out.exit_code == 0, out.output
    assert (
        f"warning: --state {tmp_path / 'nope'}: no guardian operate state there yet" in out.output
    )
    assert "operate.sqlite missing, and no such folder" in out.output
    StateStore(tmp_path / "st").close()
    out = start(tmp_path / "st")
    assert out.exit_code == 0, out.output
    assert "warning" not in out.output
