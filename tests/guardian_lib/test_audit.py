"""The audit trail: append-only tables, digests, case lifecycle reconstruction."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from guardian_lib.actions import ActionResult
from guardian_lib.audit import (
    AUDIT_TABLES,
    AuditLog,
    case_lifecycle,
    inputs_digest,
    latest_incidents,
)
from guardian_lib.decision import Decision

T0 = pd.Timestamp("2026-01-05 12:00", tz="UTC")


def _d(minutes, action, subject="ONU1", case_id="CASE1", targets=("ONU1",), **kw):
    return Decision(
        ts=T0 + pd.Timedelta(minutes=minutes), subject=subject, action=action,
        targets=targets, case_id=case_id, **kw,
    )  # fmt: skip


def test_tables_and_columns_follow_the_design(tmp_path):
    log = AuditLog(tmp_path)  # a run folder: writes warehouse.duckdb
    log.close()
    import duckdb

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    for table, cols in AUDIT_TABLES.items():
        got = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        assert got == list(cols)
    design = {"decision_id", "ts", "subject", "action", "confidence", "expected_cost",
              "rationale", "inputs_digest", "model_version", "policy_version", "mode"}  # fmt: skip
    assert design <= set(AUDIT_TABLES["decisions"])
    con.close()


def test_append_only_and_ids_continue_across_sessions(tmp_path):
    path = tmp_path / "audit.duckdb"
    log = AuditLog(path)
    first = log.record_decision(_d(0, "open_case"), {"online": False}, "simulate")
    log.close()
    log = AuditLog(path)
    second = log.record_decision(_d(5, "close_case"), {"online": True}, "simulate")
    assert first != second
    df = log.frame("decisions")
    assert list(df["decision_id"]) == [first, second]
    assert not any(hasattr(log, name) for name in ("update", "delete", "remove"))
    log.close()


def test_decision_keeps_inputs_digest_and_blocked_rule():
    log = AuditLog()
    inputs = {"online": True, "p_customer_premises": 0.9}
    d = _d(0, "reboot", targets=("CPE1",), confidence=0.9, expected_cost_brl=4.2,
           rationale={"costs_brl": {"reboot": 4.2}}, model_version="m1", policy_version="p1")  # fmt: skip
    did = log.record_decision(d, inputs, "execute", allowed=False, blocked_rule="reboot_cooldown")
    log.record_action(
        did, ActionResult("reboot", "CPE1", "blocked", d.ts, d.ts, {"rule": "reboot_cooldown"})
    )
    row = log.frame("decisions").iloc[0]
    assert json.loads(row["inputs"]) == inputs
    assert row["inputs_digest"] == inputs_digest(inputs)
    assert row["blocked_rule"] == "reboot_cooldown" and not row["allowed"]
    assert (row["model_version"], row["policy_version"], row["mode"]) == ("m1", "p1", "execute")
    act = log.frame("actions").iloc[0]
    assert act["status"] == "blocked" and act["decision_id"] == did


def test_incident_latest_row_wins():
    log = AuditLog()
    iid = log.new_incident_id()
    log.record_incident(iid, T0, scope_type="box", scope_key="B1", start_at=T0, cause="M")
    end = T0 + pd.Timedelta(hours=3)
    log.record_incident(iid, end, scope_type="box", scope_key="B1", start_at=T0, end_at=end)
    cur = latest_incidents(log.frame("incidents"))
    assert len(cur) == 1 and cur["end_at"].iloc[0] == end


@pytest.fixture
def trail():
    """Two cases: one fixed by a reboot (visit avoided), one escalated to a visit."""
    log = AuditLog()
    rows = [
        (_d(0, "open_case"), None),
        (_d(5, "reboot", targets=("CPE1",)), "succeeded"),
        (_d(50, "close_case", rationale={"outcome": "visit_avoided"}), None),
        (_d(0, "open_case", subject="ONU2", case_id="CASE2", targets=("ONU2",)), None),
        (_d(60, "schedule_visit", subject="ONU2", case_id="CASE2", targets=("ONU2",)), "done"),
        (_d(90, "reboot", subject="ONU2", case_id="CASE2", targets=("CPE2",)), "blocked"),
        (_d(400, "close_case", subject="ONU2", case_id="CASE2", targets=("ONU2",)), None),
    ]
    for d, status in rows:
        did = log.record_decision(d, {}, "simulate")
        if status:
            log.record_action(did, ActionResult(d.action, d.targets[0], status, d.ts, d.ts))
    return log


def test_case_lifecycle_is_rebuilt_from_the_trail(trail):
    life = case_lifecycle(trail.frame("decisions"), trail.frame("actions")).set_index("case_id")
    assert life.loc["CASE1", "outcome"] == "visit_avoided"
    assert life.loc["CASE1", "n_reboots"] == 1
    assert life.loc["CASE1", "duration_min"] == pytest.approx(50.0)
    assert life.loc["CASE2", "outcome"] == "visit"
    assert life.loc["CASE2", "visit_scheduled"] == 1
    assert life.loc["CASE2", "blocked"] == 1 and life.loc["CASE2", "n_reboots"] == 0


def test_unknown_table_is_named():
    with pytest.raises(KeyError, match="unknown table 'cases'"):
        AuditLog().frame("cases")
