"""`guardian alerts replay` over a small hand-built run (real warehouse, lake and audit files)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from guardian_lib.alerts.cli import register
from guardian_lib.alerts.replay import replay_run
from guardian_lib.alerts.silences import SilenceStore
from guardian_lib.audit import AuditLog
from guardian_lib.decision import Decision

T0 = pd.Timestamp("2026-01-05 12:00", tz="UTC")
P1 = [f"N{i:02d}" for i in range(10)]  # under the PON that fails
P2 = [f"N{i:02d}" for i in range(10, 20)]
DOWN = P1[:9]  # N09, under the same PON, stays healthy: not a member of the incident


def _t(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("alerts") / "run"
    root.mkdir()
    onus = pd.DataFrame({
        "onu_id": P1 + P2, "serial": [f"S{o}" for o in P1 + P2],
        "pon_id": ["P1"] * 10 + ["P2"] * 10,
        "splitter_id": ["B1"] * 10 + ["B2"] * 10,
    })  # fmt: skip
    customers = pd.DataFrame({
        "customer_id": [f"C{i:02d}" for i in range(20)], "onu_id": P1 + P2,
        "segment": ["residential"] * 19 + ["vip"], "cpe_id": [f"CPE{i}" for i in range(20)],
    })  # fmt: skip
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("CREATE TABLE olts AS SELECT 'O1' AS olt_id, 'Campinas' AS region")
    con.execute(
        "CREATE TABLE pons AS SELECT * FROM (VALUES ('P1','O1'),('P2','O1')) t(pon_id, olt_id)"
    )
    for name, df in (("onus", onus), ("customers", customers)):
        con.register("_df", df)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _df")
        con.unregister("_df")
    con.close()
    ev = pd.DataFrame({
        "ts": [_t(30)] * 9 + [_t(40)], "entity_id": [f"S{o}" for o in DOWN] + ["N15"],
        "entity_type": "onu", "type": "LOS",
    })  # fmt: skip
    (root / "lake/silver/events").mkdir(parents=True)
    ev.to_parquet(root / "lake/silver/events/data.parquet")
    rows = []
    for m in range(0, 150, 5):
        for o in P1 + P2:
            rows.append({"ts": _t(m), "onu_id": o, "online": not (o in DOWN and 30 <= m < 90)})
    (root / "lake/silver/telemetry/date=2026-01-05").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(root / "lake/silver/telemetry/date=2026-01-05/data.parquet")
    (root / "lake/gold/ml_predictions").mkdir(parents=True)
    pd.DataFrame({"ts": [_t(60)], "onu_id": [P2[-1]], "risk_24h": [0.91]}).to_parquet(
        root / "lake/gold/ml_predictions/m.parquet"
    )
    audit = AuditLog(root / "audit.duckdb")
    iid = audit.new_incident_id()
    inc = {"scope_type": "pon", "scope_key": "P1", "start_at": _t(35), "severity": "major",
           "cause": "MASSIVE_OUTAGE", "affected_customers": 9, "opened_by": "autopilot"}  # fmt: skip
    audit.record_incident(iid, _t(35), **inc)
    audit.record_incident(iid, _t(90), **{**inc, "end_at": _t(90)})

    def act(kind, target, m, status="done", took=0):
        return SimpleNamespace(action_type=kind, target=target, status=status, result={},
                               started_at=_t(m), finished_at=_t(m + took), error=None)  # fmt: skip

    def decided(m, subject, action, target, result, **kw):
        d = Decision(ts=_t(m), subject=subject, action=action, targets=(target,), **kw)
        audit.record_action(audit.record_decision(d, {}, "execute"), result)

    # As the policy audits them: the incident opens with its members, their visits held,
    # the members notified (operate's notifier tells exactly these); N09 is no member.
    scope = {"scope_type": "pon", "scope_key": "P1"}
    audit.record_decision(Decision(ts=_t(35), subject="pon:P1", action="open_incident",
                                   targets=tuple(DOWN), case_id=iid, params=scope), {}, "execute")  # fmt: skip
    did = audit.record_decision(Decision(ts=_t(35), subject="pon:P1", action="notify",
                                         targets=tuple(DOWN),
                                         params={"template": "massive_outage", "until_h": 12.0}),
                                {}, "execute")  # fmt: skip
    for o in DOWN:
        audit.record_action(did, act("notify", o, 35))
    # N03's visit held when the incident opens (a notice); N04's
    # visit cancelled because its service came back (no notice); N12's CPE rebooted, verified.
    decided(
        35,
        "pon:P1",
        "hold_visits",
        "OS3",
        act("hold_visits", "OS3", 35),
        rationale={"rule": "visits of a massive outage's members are held"},
        params={"scope_type": "pon", "scope_key": "P1", "visit_onus": {"OS3": "N03"}},
    )
    decided(
        50,
        "N04",
        "cancel_visit",
        "OS4",
        act("cancel_visit", "OS4", 50),
        rationale={"rule": "case back and stable"},
    )
    decided(70, "N12", "reboot", "CPE12", act("reboot", "CPE12", 70, "succeeded", took=15),
            case_id="CASE12")  # fmt: skip
    # N15's own problem (no incident): the customer told under its case, ETA until_h
    decided(40, "N15", "notify", "N15", act("notify", "N15", 40), case_id="CASE15",
            params={"template": "individual_problem", "until_h": 6.0})  # fmt: skip
    audit.close()
    return root


def test_replay_one_incident_one_notification_onus_beneath_inhibited(run):
    r = replay_run(run)
    assert r["incidents"]["count"] == 1
    raw = r["alerts_raw"]["by_rule"]
    assert raw["MassiveIncident"] == 1 and raw["OnuLossOfSignal"] == 10
    assert raw["PonOfflineShare"] == 1 and raw["VipCustomerAtRisk"] == 1
    notes = r["alerts_notified"]["list"]
    massive = [n for n in notes if n["alerts"][0]["labels"]["alertname"] == "MassiveIncident"]
    assert [n["status"] for n in massive] == ["firing", "resolved"]
    assert "9 customers affected" in massive[0]["alerts"][0]["annotations"]["summary"]
    told_onus = {a["labels"].get("onu") for n in notes for a in n["alerts"]}
    assert not told_onus & set(P1) and "N15" in told_onus
    assert "PonOfflineShare" not in {a["labels"]["alertname"] for n in notes for a in n["alerts"]}
    assert r["muted"]["inhibited"] > 0
    assert r["noise_reduction"] == pytest.approx(13 / r["alerts_notified"]["firing"], abs=1e-3)
    assert r["noise_reduction"] > 1
    cn = r["customer_notices"]
    # the members only: 8 outage notices + N03's held visit, each resolved; N09 told nothing
    assert cn["by_template"] == {"equipment_rebooted": 1, "outage_detected": 8,
                                 "outage_resolved": 9, "problem_detected": 1,
                                 "visit_cancelled": 1}  # fmt: skip
    (problem,) = [n for n in cn["list"] if n["template"] == "problem_detected"]
    assert (problem["customer_id"], problem["incident_id"]) == ("C15", "CASE15")
    per = {(n["customer_id"], n["template"]) for n in cn["list"]}
    assert not {c for c, _ in per} & {"C09"}
    (detected,) = [n for n in cn["list"] if n["customer_id"] == "C00"][:1]
    assert detected["incident_id"] == r["incidents"]["list"][0]["incident_id"]
    assert ("C03", "visit_cancelled") in per and ("C03", "outage_detected") not in per
    assert ("C04", "outage_detected") in per and ("C04", "visit_cancelled") not in per
    assert ("C12", "equipment_rebooted") in per
    (rebooted,) = [n for n in cn["list"] if n["template"] == "equipment_rebooted"]
    assert rebooted["incident_id"] == "CASE12" and rebooted["requested_at"] == str(
        _t(85).isoformat()
    )


def test_replay_honours_silences_and_opt_outs(run, tmp_path):
    store = SilenceStore(tmp_path / "s.db")
    store.add({"alertname": "OnuLossOfSignal"}, _t(0), _t(600), "ana", "noisy ONUs")
    r = replay_run(run, silences=store, opted_out=("C00", "C01"))
    names = {a["labels"]["alertname"] for n in r["alerts_notified"]["list"] for a in n["alerts"]}
    assert "OnuLossOfSignal" not in names and "MassiveIncident" in names
    assert r["muted"]["silenced"] > 0
    assert r["customer_notices"]["skipped"]["opted_out"] == 4  # detected + resolved, twice
    assert not {n["customer_id"] for n in r["customer_notices"]["list"]} & {"C00", "C01"}


def test_cli_replay_and_silences(run, tmp_path):
    runner = CliRunner()
    app = typer.Typer()
    register(app)
    alerts_app = silences_app = app
    out = tmp_path / "replay.json"
    res = runner.invoke(alerts_app, ["alerts", "replay", "--run", str(run), "--json", str(out)])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert {"incidents", "alerts_raw", "alerts_notified", "customer_notices"} <= set(data)
    db = str(tmp_path / "sil.db")
    res = runner.invoke(silences_app, ["silences", "add", "olt=O1", "--author", "ana", "--comment", "works",
                                       "--db", db, "--duration", "1h"])  # fmt: skip
    assert res.exit_code == 0, res.output
    sid = res.output.split(":")[0]
    listed = json.loads(
        runner.invoke(silences_app, ["silences", "list", "--db", db, "--json"]).output
    )
    assert [s["id"] for s in listed] == [sid] and listed[0]["author"] == "ana"
    assert runner.invoke(silences_app, ["silences", "expire", sid, "--db", db]).exit_code == 0
    assert (
        json.loads(runner.invoke(silences_app, ["silences", "list", "--db", db, "--json"]).output)
        == []
    )
    bad = runner.invoke(silences_app, ["silences", "add", "olt", "--author", "a", "--comment", "c",
                                       "--db", db])  # fmt: skip
    assert bad.exit_code != 0 and "name=value" in str(bad.exception or bad.output)
