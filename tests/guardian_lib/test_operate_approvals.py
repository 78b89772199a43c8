"""Approved actions are checked again against every safety rule when they are sent."""

from __future__ import annotations

import json

import pandas as pd
import yaml

from guardian_lib.dashboards.glossary import rationale_text
from guardian_lib.operate.fleet import load_subscribers
from guardian_lib.operate.service import Operator
from guardian_lib.operate.site import load_site

T0 = pd.Timestamp("2026-03-02T10:00:00Z")


def _operator(tmp_path, field: dict | None = None, **safety) -> Operator:
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    (tmp_path / "subs.csv").write_text(
        "onu_id,customer_id,pon_id,box_id,olt_id,region,cpe_id\n"
        "A,C1,P1,B1,OLT-1,Campinas,CPE-A\nB,C2,P1,B2,OLT-1,Campinas,CPE-B\n"
        "C,C3,P2,B3,OLT-1,Campinas,CPE-C\n"
    )
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(
        {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
         "subscribers": "subs.csv", "safety": safety,
         **({"field_service": field} if field else {})}))  # fmt: skip
    op = Operator(load_site(tmp_path / "site.yaml"), tmp_path / "state", mode="approve")
    op._build(load_subscribers(tmp_path / "subs.csv"))
    return op


def _approve(op: Operator, *pairs: tuple[str, str]) -> None:
    for onu, cpe in pairs:
        aid = op.store.propose(ts=T0.isoformat(), action="reboot", subject=onu, target=cpe,
                               pon_id=op.context.pon_of.get(cpe))  # fmt: skip
        op.store.decide(aid, "approved", "ana")


def _outcome(op: Operator) -> dict[str, tuple[str, str | None]]:
    """Approval status and blocking rule per subject; the audit agrees."""
    out = {a["subject"]: (a["status"], json.loads(a["result"]).get("rule")
                          if a["result"] and a["result"].startswith("{") else None)
           for a in op.store.approvals()}  # fmt: skip
    op.audit.flush()
    dec = op.audit.frame("decisions")
    for subject, (_status, rule) in out.items():
        row = dec[dec["subject"] == subject].iloc[-1]
        assert bool(row["allowed"]) == (rule is None)
        assert (None if pd.isna(row["blocked_rule"]) else row["blocked_rule"]) == rule
    return out


def _sent(op: Operator) -> list[str]:
    """Targets handed to the device adapter (no ACS here: each fails, none is blocked)."""
    act = op.audit.frame("actions")
    return sorted(act.loc[act["status"] != "blocked", "target"])


def test_an_approved_reboot_meets_the_kill_switch_switched_on_after_approval(tmp_path):
    op = _operator(tmp_path)
    try:
        _approve(op, ("A", "CPE-A"))
        (tmp_path / "state" / "KILL_SWITCH").touch()
        op._run_approved(T0)
        assert _outcome(op) == {"A": ("failed", "kill_switch")}
        assert _sent(op) == []
    finally:
        op.close()


def test_an_approved_reboot_is_held_by_an_outage_opened_since(tmp_path):
    op = _operator(tmp_path)
    try:
        op.autopilot.incidents["INC1"] = {"scope_type": "pon", "scope_key": "P1",
                                          "start_at": T0, "cause": "MASSIVE_OUTAGE",
                                          "affected": 2, "members": ("A", "B")}  # fmt: skip
        _approve(op, ("A", "CPE-A"), ("C", "CPE-C"))
        op._run_approved(T0)
        got = _outcome(op)
        assert got["A"] == ("failed", "active_outage")
        assert got["C"][1] is None  # another PON: sent
        assert _sent(op) == ["CPE-C"]
    finally:
        op.close()


def test_approved_reboots_respect_the_cooldown_and_the_pon_cap_over_what_was_sent(tmp_path):
    op = _operator(tmp_path, max_reboots_per_pon_per_hour=1, reboot_cooldown_minutes=60)
    try:
        # CPE-C was rebooted 10 minutes ago (journalled by an earlier cycle).
        op.store.journal_begin("k0", cycle=1, ts=(T0 - pd.Timedelta(minutes=10)).isoformat(),
                               action="reboot", target="CPE-C", pon_id="P2")  # fmt: skip
        op.store.journal_end("k0", "sent")
        _approve(op, ("A", "CPE-A"), ("B", "CPE-B"), ("C", "CPE-C"))
        op._run_approved(T0)
        got = _outcome(op)
        assert got["A"][1] is None  # the first of PON P1 goes
        assert got["B"] == ("failed", "pon_rate_cap")  # the second would break the cap
        assert got["C"] == ("failed", "reboot_cooldown")
    finally:
        op.close()


def test_a_queued_proposal_does_not_block_its_own_execution(tmp_path):
    """The autopilot's guard counted the proposal when it queued it; the re-check counts
    only what was sent, so the approved reboot still goes."""
    op = _operator(tmp_path, reboot_cooldown_minutes=360)
    try:
        from guardian_lib.decision import Decision

        d = Decision(ts=T0 - pd.Timedelta(minutes=5), subject="A", action="reboot",
                     targets=("CPE-A",))  # fmt: skip
        assert op.autopilot.guard.check(d, d.ts, pon_id="P1").allowed
        _approve(op, ("A", "CPE-A"))
        op._run_approved(T0)
        assert _outcome(op)["A"][1] is None
        assert _sent(op) == ["CPE-A"]
    finally:
        op.close()


def test_a_blocked_approval_is_audited_in_the_autopilots_shape(tmp_path):
    """One shape for a blocked action: ``{"rule": RULE}``, as the autopilot writes it
    (tests/guardian_lib/test_decision_engine.py), so the dashboards name the rule."""
    op = _operator(tmp_path)
    try:
        _approve(op, ("A", "CPE-A"))
        (tmp_path / "state" / "KILL_SWITCH").touch()
        op._run_approved(T0)
        op.audit.flush()
        acts = op.audit.frame("actions")
        [approval] = op.store.approvals()
    finally:
        op.close()
    [result] = acts.loc[acts["status"] == "blocked", "result"]
    assert json.loads(result) == json.loads(approval["result"]) == {"rule": "kill_switch"}
    assert rationale_text(result, "en") == "Rule: kill switch"


def test_audit_rows_written_before_the_shapes_were_one_still_name_the_rule():
    old = json.dumps({"blocked": "kill_switch"})
    assert rationale_text(old, "en") == rationale_text(json.dumps({"rule": "kill_switch"}), "en")


def test_every_safety_rule_reads_in_portuguese():
    from guardian_lib.decision import RULES

    for rule in RULES:
        text = rationale_text(json.dumps({"rule": rule}), "pt-BR")
        assert text.startswith("Regra: ") and rule not in text, text


def test_an_approved_visit_is_followed_by_its_case(tmp_path):
    """The proposal opened nothing; once approved and sent, the ONU's case follows the real
    order (its status when the case closes; the call-ahead's answer), as it does for a
    visit the autopilot opened itself in execute mode."""
    op = _operator(tmp_path, field={"kind": "drop_folder", "folder": "visits"})
    try:
        op.autopilot.cases["A"] = {
            "case_id": "CASE1", "opened_at": T0, "reboots": 0, "last_reboot_at": pd.NaT,
            "visit_os_id": None, "notified": False, "last_wifi_change_at": pd.NaT,
            "wifi_changes": 0,
        }  # fmt: skip
        aid = op.store.propose(
            ts=T0.isoformat(), action="schedule_visit", subject="A", target="A", pon_id="P1",
            params={"confirm_first": True, "confirm_question": "power_on", "reason": "dark"},
        )  # fmt: skip
        op.store.decide(aid, "approved", "ana")
        op._run_approved(T0)
        case = op.autopilot.cases["A"]
        assert case["visit_os_id"] is not None
        assert case["call_ahead_os_id"] == case["visit_os_id"]
        opened = tmp_path / "visits" / f"{case['visit_os_id']}.open.csv"
        assert opened.exists() and "power_on" in opened.read_text()
    finally:
        op.close()
