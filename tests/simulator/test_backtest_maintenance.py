"""The backtest honours maintenance windows (``MAINTENANCE_FILE``) through the same
safety guard as ``guardian operate``: no reboot inside a window, each block audited."""

from __future__ import annotations

import json

import duckdb
import yaml

from simulator.backtest import run_policy


def _window(tmp_path, olt: str, start: str, end: str):
    p = tmp_path / "maintenance.yaml"
    p.write_text(yaml.safe_dump({"maintenance_windows": [
        {"name": "works", "matchers": {"olt": olt}, "start": start, "end": end}]}))  # fmt: skip
    return p


def test_a_window_blocks_every_reboot_it_covers_and_nothing_else(tmp_path, monkeypatch, only_fault):
    sc = only_fault("cpe_hang", 40.0, days=0.4, fault_params={"cpe_hang_precursor_share": 0.0})
    free = run_policy(sc, "rules", seed=3)
    assert free["reboots"] > 0  # the control: hung CPEs get rebooted
    whole_run = ("2026-01-04T00:00:00Z", "2026-01-07T00:00:00Z")
    monkeypatch.setenv("MAINTENANCE_FILE", str(_window(tmp_path, "NO-SUCH-OLT", *whole_run)))
    assert run_policy(sc, "rules", seed=3)["reboots"] == free["reboots"]  # elsewhere
    monkeypatch.setenv("MAINTENANCE_FILE", str(_window(tmp_path, "~.*", *whole_run)))
    audit = tmp_path / "audit.duckdb"
    held = run_policy(sc, "rules", seed=3, audit_path=audit)
    assert held["reboots"] == 0
    con = duckdb.connect(str(audit), read_only=True)
    try:
        rows = con.execute(
            "SELECT d.action, d.rationale, a.result FROM decisions d JOIN actions a "
            "USING (decision_id) WHERE d.blocked_rule = 'maintenance_window'"
        ).fetchall()
    finally:
        con.close()
    assert {r[0] for r in rows} >= {"reboot"}
    assert all(json.loads(r[1])["maintenance_window"] == "works" for r in rows)
    assert all(json.loads(r[2])["maintenance_window"] == "works" for r in rows)
